export * from "./adapter.js";
export * from "./client.js";
export * from "./server.js";
