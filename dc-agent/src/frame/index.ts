export * from "./format.js";
export * from "./errors.js";
export * from "./utf16.js";
export * from "./decodeFrame.js";
export * from "./encodeFrame.js";
export * from "./ack.js";
export * from "./spoolEnvelope.js";
