import { randomUUID } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { SMTPServer, type SMTPServerAddress, type SMTPServerSession } from "smtp-server";
import { parseEml } from "./eml.js";

export interface SmtpCatcherOptions {
  /** 0 picks a free port. */
  port: number;
  /** Folder the .eml files are written into (created if missing). */
  dir: string;
  host?: string;
  /**
   * When set, clients must AUTH (PLAIN or LOGIN) with exactly these credentials. Without it
   * AUTH is optional and any credentials are accepted, like a permissive dev relay.
   */
  auth?: { user: string; pass: string };
  /** Offer STARTTLS with this key/certificate (PEM). Off unless given. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Larger messages are refused with 552 (default 25 MiB). */
  maxMessageBytes?: number;
  /** Called after a message is safely on disk. */
  onMessage?: (message: CaughtMessage) => void;
}

export interface CaughtMessage {
  id: string;
  /** Absolute path of the .eml file. */
  file: string;
  /** SMTP envelope sender and recipients (what the relay was asked to deliver). */
  envelopeFrom: string;
  envelopeTo: string[];
  subject: string;
  sizeBytes: number;
  receivedAt: Date;
  /** The authenticated user, if the client authenticated. */
  authUser?: string;
}

export interface SmtpCatcher {
  readonly port: number;
  /** Messages caught since start, oldest first. */
  messages(): CaughtMessage[];
  close(): Promise<void>;
}

const DEFAULT_MAX_BYTES = 25 * 1024 * 1024;

/** A real SMTP server that accepts mail and writes each message to `dir` as an .eml file. */
export async function startSmtpCatcher(options: SmtpCatcherOptions): Promise<SmtpCatcher> {
  const dir = path.resolve(options.dir);
  mkdirSync(dir, { recursive: true });
  const caught: CaughtMessage[] = [];
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_BYTES;

  const server = new SMTPServer({
    name: "pwsync-smtp-catcher",
    banner: "pwsync SMTP catcher (development only; nothing is delivered)",
    size: maxBytes,
    logger: false,
    authOptional: !options.auth,
    // Clear-text AUTH is what a dev relay without TLS has to allow.
    allowInsecureAuth: true,
    authMethods: ["PLAIN", "LOGIN"],
    disabledCommands: options.tls ? [] : ["STARTTLS"],
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert } : {}),
    onAuth(auth, _session, callback) {
      if (!options.auth) return callback(null, { user: auth.username ?? "anonymous" });
      if (auth.username === options.auth.user && auth.password === options.auth.pass) return callback(null, { user: auth.username });
      return callback(Object.assign(new Error("Invalid username or password"), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", (err) => callback(err));
      stream.on("end", () => {
        if (stream.sizeExceeded) {
          return callback(Object.assign(new Error(`Message exceeds the ${maxBytes} byte limit`), { responseCode: 552 }));
        }
        try {
          const message = store(Buffer.concat(chunks), session);
          caught.push(message);
          options.onMessage?.(message);
          callback(null, `Message caught as ${message.id}`);
        } catch (err) {
          callback(Object.assign(new Error(`Cannot store message: ${(err as Error).message}`), { responseCode: 451 }));
        }
      });
    },
  });

  function store(raw: Buffer, session: SMTPServerSession): CaughtMessage {
    const receivedAt = new Date();
    const id = `${receivedAt.toISOString().replace(/[:.]/g, "-")}-${randomUUID().slice(0, 8)}`;
    const file = path.join(dir, `${id}.eml`);
    // Written under a dot-name and renamed, so a reader of the folder never sees half a message.
    const temporary = path.join(dir, `.${id}.tmp`);
    writeFileSync(temporary, raw, { flag: "wx" });
    renameSync(temporary, file);
    const from = session.envelope.mailFrom;
    return {
      id,
      file,
      envelopeFrom: from ? from.address : "",
      envelopeTo: session.envelope.rcptTo.map((r: SMTPServerAddress) => r.address),
      subject: parseEml(raw).subject,
      sizeBytes: raw.length,
      receivedAt,
      ...(session.user ? { authUser: String(session.user) } : {}),
    };
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  // A misbehaving client must not take the catcher down.
  server.on("error", () => {});
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    messages: () => [...caught],
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
