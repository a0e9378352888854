import nodemailer from "nodemailer";
import type { SmtpRelay } from "./settings.js";
import type { RenderedMail } from "./templates.js";

export interface Mailer {
  /** Resolves with the SMTP Message-ID; rejects with the relay's error. */
  send(to: string, mail: RenderedMail, changeId: string): Promise<{ messageId: string }>;
  close(): void;
}

/** The relay refused for good (5xx: unknown mailbox, policy): retrying will not help. */
export function isPermanentSmtpError(err: unknown): boolean {
  const code = (err as { responseCode?: unknown }).responseCode;
  return typeof code === "number" && code >= 500 && code < 600;
}

/** What an admin needs from an SMTP error, without the stack. */
export function describeSmtpError(err: unknown): string {
  const e = err as { message?: string; code?: string; responseCode?: number; response?: string };
  const parts = [e.responseCode ? `SMTP ${e.responseCode}` : "", e.code ?? "", e.response ?? e.message ?? String(err)].filter(Boolean);
  return parts.join(": ");
}

export function createMailer(smtp: SmtpRelay): Mailer {
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: smtp.startTls === "required",
    ignoreTLS: smtp.startTls === "off",
    ...(smtp.user && smtp.pass ? { auth: { user: smtp.user, pass: smtp.pass } } : {}),
    connectionTimeout: smtp.timeoutMs,
    greetingTimeout: smtp.timeoutMs,
    socketTimeout: smtp.timeoutMs,
  });
  return {
    async send(to, mail, changeId) {
      const info = await transport.sendMail({
        from: smtp.from,
        // Already one checked mailbox (singleMailbox); as an object and a fixed envelope so
        // nodemailer delivers to exactly that and does not parse the string again.
        to: { name: "", address: to },
        envelope: { from: smtp.from, to: [to] },
        subject: mail.subject,
        text: mail.text,
        headers: {
          // RFC 3834: out-of-office robots must not answer an alert.
          "Auto-Submitted": "auto-generated",
          "X-Pwsync-Change-Id": changeId,
        },
      });
      return { messageId: info.messageId };
    },
    close: () => transport.close(),
  };
}
