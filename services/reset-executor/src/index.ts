export { executorConfigSchema, executorSection, type ExecutorConfig, type ExecutorSection } from "./config.js";
export { startExecutor, type ExecutorDeps } from "./processor.js";
export { SlidingWindowLimiter } from "./rate-limiter.js";
export { reapExpiredSecrets, startSecretReaper } from "./secret-reaper.js";
