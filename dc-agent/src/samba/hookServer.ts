import { chmodSync, mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { Logger } from "@pwsync/log";

export interface HookRequest {
  mode: "live" | "bulk" | "baseline";
  intervalMs: number;
  /** The LDIF of one account; the handler wipes it. */
  ldif: Buffer;
}

export type HookReply = { ok: true; message: string } | { ok: false; message: string };

/** An LDIF is a few KiB; anything far larger is not from syncpasswords. */
const MAX_REQUEST_BYTES = 1024 * 1024;

/**
 * The Unix socket the syncpasswords hook (samba/pwsync-samba-hook.mjs) talks to: one request
 * per connection (a JSON header line, then the LDIF until end of stream), one reply line.
 * The socket lives in a 0700 directory: only root (the DC's syncpasswords) can connect.
 */
export async function startHookServer(
  socketPath: string,
  handle: (req: HookRequest) => Promise<HookReply>,
  logger: Logger,
): Promise<{ close(): Promise<void> }> {
  mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
  chmodSync(path.dirname(socketPath), 0o700);
  rmSync(socketPath, { force: true });
  // allowHalfOpen: the hook half-closes after the LDIF; the reply comes after sealing and queueing.
  const server = net.createServer({ allowHalfOpen: true }, (conn) => {
    const chunks: Buffer[] = [];
    let size = 0;
    conn.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) {
        conn.destroy();
        return;
      }
      chunks.push(c);
    });
    conn.on("error", () => {});
    conn.on("end", () => {
      const all = Buffer.concat(chunks);
      for (const c of chunks) c.fill(0);
      const nl = all.indexOf(0x0a);
      let reply: Promise<HookReply>;
      try {
        const header = JSON.parse(all.subarray(0, nl).toString("utf8")) as { mode?: string; intervalMs?: number };
        const mode = header.mode === "bulk" ? "bulk" : "live";
        reply = handle({ mode, intervalMs: Math.max(0, Number(header.intervalMs) || 0), ldif: all.subarray(nl + 1) });
      } catch {
        reply = Promise.resolve({ ok: false, message: "malformed hook request" });
      }
      reply
        .catch((err: unknown) => ({ ok: false, message: (err as Error).message }) as HookReply)
        .then((r) => {
          all.fill(0);
          if (!r.ok) logger.warn({ reply: r.message }, "samba delivery refused; syncpasswords stops and delivers it again after its restart");
          conn.end(`${r.ok ? "OK" : "ERR"} ${r.message.replace(/\n/g, " ")}\n`);
        });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  logger.debug({ socket: socketPath }, "samba hook socket listening");
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        rmSync(socketPath, { force: true });
      }),
  };
}
