export * from "./process.js";
export * from "./stack.js";
