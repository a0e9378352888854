export { resolverConfigSchema, type ResolverConfig } from "./config.js";
export { startResolver, userPartitionKey, handleChangeCaptured, handleRetryRequested } from "./processor.js";
