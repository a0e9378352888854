export * from "./adapter.js";
export * from "./client.js";
export * from "./health.js";
export * from "./implement.js";
export * from "./server.js";
