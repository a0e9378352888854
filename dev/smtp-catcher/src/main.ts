import { exitWhenParentDies } from "@pwsync/service-runtime";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger } from "@pwsync/log";
import { startSmtpCatcher } from "./catcher.js";

// Development SMTP relay: accepts every message and keeps it as an .eml file. Flags win over
// PWSYNC_SMTP_CATCHER_* environment variables.
const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string" },
    dir: { type: "string" },
    user: { type: "string" },
    pass: { type: "string" },
    "tls-key": { type: "string" },
    "tls-cert": { type: "string" },
  },
});
const env = process.env;
const setting = (flag: string | undefined, name: string) => flag ?? env[`PWSYNC_SMTP_CATCHER_${name}`];

const logger = createLogger({ service: "smtp-catcher" });
const port = Number(setting(values.port, "PORT") ?? 2525);
const dir = setting(values.dir, "DIR") ?? "./var/mail";
const user = setting(values.user, "USER");
const pass = setting(values.pass, "PASS");
const tlsKey = setting(values["tls-key"], "TLS_KEY");
const tlsCert = setting(values["tls-cert"], "TLS_CERT");

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  logger.fatal({ port }, "port must be an integer between 0 and 65535");
  process.exit(2);
}
if (Boolean(user) !== Boolean(pass) || Boolean(tlsKey) !== Boolean(tlsCert)) {
  logger.fatal({}, "give --user with --pass, and --tls-key with --tls-cert (or neither)");
  process.exit(2);
}

const catcher = await startSmtpCatcher({
  port,
  dir,
  host: setting(values.host, "HOST") ?? "127.0.0.1",
  ...(user && pass ? { auth: { user, pass } } : {}),
  ...(tlsKey && tlsCert ? { tls: { key: readFileSync(tlsKey), cert: readFileSync(tlsCert) } } : {}),
  onMessage: (m) =>
    logger.info({ id: m.id, file: m.file, from: m.envelopeFrom, to: m.envelopeTo, subject: m.subject, sizeBytes: m.sizeBytes }, "message caught"),
});
logger.info({ event: "ready", port: catcher.port, dir, auth: Boolean(user), startTls: Boolean(tlsKey) }, "smtp catcher listening");

// Under the dev launcher, stop (gracefully, via our own SIGTERM handler) when it is gone.
exitWhenParentDies(() => process.kill(process.pid, "SIGTERM"));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    logger.info({ signal }, "smtp catcher stopping");
    void catcher.close().then(() => process.exit(0));
  });
}
