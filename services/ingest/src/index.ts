export { ingestConfigSchema, type IngestConfig } from "./config.js";
export { startIngest } from "./server.js";
export { streamIdOf } from "./commit.js";
export { commitChanges, type ChangeToCommit } from "./commit.js";
export { validateChange } from "./validate.js";
