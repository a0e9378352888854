import { alertMailSettingsSchema } from "@pwsync/alert-mail";
import { z } from "@pwsync/config";

/**
 * The seed's Alerts tab: SMTP relay hostname, admin and end-user alerts, Email Throttle.
 * In pwsync.yaml these live under `notifier:` (see notifierFileConfigSchema).
 */
export const notifierConfigSchema = z
  .object({
    database: z.object({ url: z.string().min(1) }),
    // smtp, adminRecipients, templatesDir: shared with the admin API's test alert.
    ...alertMailSettingsSchema.shape,
    notifyAdmins: z.boolean().default(true),
    notifyEndUser: z.boolean().default(false),
    /** ChangeCaptured fields tried in order for the end user's address. */
    endUserAddressFrom: z
      .array(z.enum(["mail", "userPrincipalName"]))
      .min(1)
      .default(["mail", "userPrincipalName"]),
    /** Per recipient: at most maxPerWindow alerts in any windowMinutes-long window. */
    throttle: z
      .object({
        maxPerWindow: z.number().int().min(1).default(5),
        windowMinutes: z.number().positive().default(60),
      })
      .default({ maxPerWindow: 5, windowMinutes: 60 }),
    health: z
      .object({ host: z.string().default("0.0.0.0"), port: z.number().int().min(0).max(65535).default(50064) })
      .default({ host: "0.0.0.0", port: 50064 }),
  })
  .superRefine((config, ctx) => {
    if (config.notifyAdmins && config.adminRecipients.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["adminRecipients"],
        message: "notifyAdmins is on but no admin recipient is configured (list at least one, or set notifyAdmins: false)",
      });
    }
  });

export type NotifierConfig = z.infer<typeof notifierConfigSchema>;

/**
 * How the notifier reads the shared pwsync.yaml: its settings live under `notifier:` (env
 * PWSYNC_NOTIFIER__SMTP__HOST, ...), the database under `database:` like every service.
 */
export const notifierFileConfigSchema = z
  .object({
    database: z.object({ url: z.string().min(1) }).passthrough(),
    notifier: z.record(z.string(), z.unknown()).default({}),
  })
  .transform((file, ctx) => {
    const parsed = notifierConfigSchema.safeParse({ ...file.notifier, database: { url: file.database.url } });
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) {
      const path = issue.path[0] === "database" ? issue.path : ["notifier", ...issue.path];
      ctx.addIssue({ code: "custom", path, message: issue.message });
    }
    return z.NEVER;
  });
