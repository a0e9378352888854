export { startSandboxTenant, type SandboxTenantOptions, type SandboxTenantHandle, type SandboxStats } from "./server.js";
export type { AppRegistration } from "./apps.js";
export { parseUsers, loadUsersFile, type SandboxUser } from "./users.js";
export { DOCUMENTED_WRITE_BUDGET, type WriteBudget } from "./throttle.js";
export { meetsEntraComplexity } from "./complexity.js";
export { sandboxControl } from "./control-client.js";
