export * from "./adapter.js";
export * from "./server.js";
