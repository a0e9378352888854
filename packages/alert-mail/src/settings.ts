import { z } from "@pwsync/config";

// The part of pwsync.yaml's `notifier:` section that decides how an alert is written and sent.
// The notifier sends real alerts with it and the admin API its test alert, so both read the
// same relay, recipients and templates: a test alert that arrives proves real ones will.

export const mailAddress = z.string().trim().toLowerCase().pipe(z.email());

export const smtpRelaySchema = z
  .object({
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(25),
    /** Implicit TLS from the first byte (usually port 465). */
    secure: z.boolean().default(false),
    /** required: refuse to send unless the relay upgrades with STARTTLS; off: never try. */
    startTls: z.enum(["required", "opportunistic", "off"]).default("opportunistic"),
    user: z.string().optional(),
    pass: z.string().optional(),
    from: mailAddress,
    timeoutMs: z.number().int().positive().default(15_000),
    /**
     * Tries for a relay that is down or answers 4xx before NotificationFailed is recorded.
     * A 5xx answer (address refused) is final at once.
     */
    maxAttempts: z.number().int().min(1).default(8),
  })
  .superRefine((smtp, ctx) => {
    if (Boolean(smtp.user) !== Boolean(smtp.pass)) {
      ctx.addIssue({ code: "custom", path: ["pass"], message: "smtp.user and smtp.pass go together: give both or neither" });
    }
  });

export type SmtpRelay = z.infer<typeof smtpRelaySchema>;

/** Relay, admin recipients and template folder; unknown keys of the section are ignored. */
export const alertMailSettingsSchema = z.object({
  smtp: smtpRelaySchema,
  adminRecipients: z.array(mailAddress).default([]),
  /** Folder with admin-subject.txt, admin-body.txt, end-user-subject.txt, end-user-body.txt (each optional). */
  templatesDir: z.string().optional(),
});

export type AlertMailSettings = z.infer<typeof alertMailSettingsSchema>;
