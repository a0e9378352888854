export { notifierConfigSchema, notifierFileConfigSchema, type NotifierConfig } from "./config.js";
export { decide, outcomeKey, windowExpired, type Decision, type NotifyPolicy, type Role, type Situation, type ThrottleWindow } from "./decide.js";
export { HEALTH_SERVICE_NAME } from "./health.js";
export { startNotifier, type NotifierOptions, type RunningNotifier } from "./notifier.js";
export { createNotificationHandler, NOTIFIED_EVENT_TYPES, NOTIFIER_GROUP, startNotificationProcessor } from "./processor.js";
