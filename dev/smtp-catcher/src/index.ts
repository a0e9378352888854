export { startSmtpCatcher, type CaughtMessage, type SmtpCatcher, type SmtpCatcherOptions } from "./catcher.js";
export { decodeEncodedWords, parseEml, readEml, type ParsedEml } from "./eml.js";
