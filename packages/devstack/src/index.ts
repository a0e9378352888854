export * from "./process.js";
export * from "./stack.js";
export * from "./load.js";
export * from "./exit-guard.js";
export * from "./memory.js";
