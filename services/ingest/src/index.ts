export { ingestConfigSchema, type IngestConfig } from "./config.js";
export { startIngest } from "./server.js";
export { streamIdOf } from "./commit.js";
