export { resolverConfigSchema, type ResolverConfig } from "./config.js";
export { startResolver, userPartitionKey, handleChangeCaptured } from "./processor.js";
