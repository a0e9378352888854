export {
  createGraphClient,
  GRAPH_SCOPE,
  MICROSOFT_AUTHORITY_HOST,
  MICROSOFT_GRAPH_BASE_URL,
  type GraphClient,
  type GraphClientOptions,
} from "./client.js";
export { findUsers, setPassword, type EntraUser, type UserLookupAttribute, type SetPasswordOptions } from "./users.js";
export { classifyGraphError, parseRetryAfter, type ClassifiedGraphError, type GraphErrorKind } from "./errors.js";
export { verifyCredentials, type VerifyResult } from "./verify.js";
export { odataStringLiteral } from "./odata.js";
export { graphClientFromConfig } from "./from-config.js";
export { GraphBatcher, GRAPH_BATCH_LIMIT, type GraphBatcherOptions } from "./batcher.js";
