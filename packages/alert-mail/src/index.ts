export { createMailer, describeSmtpError, isPermanentSmtpError, type Mailer } from "./mailer.js";
export { alertMailSettingsSchema, mailAddress, smtpRelaySchema, type AlertMailSettings, type SmtpRelay } from "./settings.js";
export {
  checkTemplate,
  DEFAULT_TEMPLATES,
  loadTemplates,
  render,
  TemplateError,
  type AlertFacts,
  type AlertRole,
  type RenderedMail,
  type TemplateName,
  type Templates,
} from "./templates.js";
