export * from "./envelope.js";
export * from "./keyring.js";
export * from "./seal.js";
export * from "./epochs.js";
