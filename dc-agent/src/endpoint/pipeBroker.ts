import { spawn, type ChildProcess } from "node:child_process";
import type { Logger } from "@pwsync/log";
import { decodeFrame, decodeHeader, encodeAck, HEADER_BYTES, MAX_FRAME_BYTES, Offset, wipe, type AckStatus, type DecodedFrame } from "../frame/index.js";
import type { FrameServer } from "./frameServer.js";

export interface PipeBrokerOptions {
  /** The native helper and its arguments before the pipe name (dc-agent/native/pwsync-pipe.exe). */
  command: string[];
  pipeName: string;
  logger: Logger;
  handle(frame: DecodedFrame): Promise<AckStatus>;
  /** Restart pause after the helper exits unexpectedly. */
  restartMs?: number;
}

const MESSAGE_HEADER = 8;

/**
 * The filter's pipe on Windows, through pwsync-pipe.exe: Node cannot give a pipe a DACL or
 * PIPE_REJECT_REMOTE_CLIENTS, so the helper owns the pipe (SYSTEM only, local clients only) and
 * relays each frame over its stdout, [u32 connection][u32 length][frame]; we answer
 * [u32 connection][16-byte ack] on its stdin. Everything else — validation, sealing, queueing,
 * the ack's meaning — is the same as the Unix-socket endpoint (frameServer.ts). Frames are
 * in this process's memory and the helper's only, never on disk; buffers are wiped.
 */
export async function startPipeBroker(options: PipeBrokerOptions): Promise<FrameServer> {
  const { logger } = options;
  let child: ChildProcess | undefined;
  let closing = false;
  let restartTimer: NodeJS.Timeout | undefined;

  const answer = (c: ChildProcess, id: number, status: AckStatus, sequence: bigint) => {
    const out = Buffer.alloc(4 + 16);
    out.writeUInt32LE(id, 0);
    encodeAck({ status, sequence }).copy(out, 4);
    if (c.stdin?.writable) c.stdin.write(out);
  };

  const start = () => {
    const [cmd, ...args] = options.command;
    const c = spawn(cmd!, [...args, options.pipeName], { stdio: ["pipe", "pipe", "pipe"], windowsHide: true });
    child = c;
    let buf = Buffer.alloc(0);
    c.stdin!.on("error", () => {});
    c.stderr!.on("data", (d: Buffer) => logger.info({ helper: "pwsync-pipe", line: d.toString("utf8").trim() }, "pipe helper"));
    c.stdout!.on("data", (chunk: Buffer) => {
      const next = Buffer.concat([buf, chunk]);
      wipe(buf);
      wipe(chunk);
      buf = next;
      while (buf.length >= MESSAGE_HEADER) {
        const id = buf.readUInt32LE(0);
        const length = buf.readUInt32LE(4);
        if (length < HEADER_BYTES || length > MAX_FRAME_BYTES) {
          logger.error({ length }, "pipe helper sent a message of impossible length; restarting it");
          wipe(buf);
          buf = Buffer.alloc(0);
          c.kill();
          return;
        }
        if (buf.length < MESSAGE_HEADER + length) break;
        const frame = Buffer.from(buf.subarray(MESSAGE_HEADER, MESSAGE_HEADER + length));
        const rest = Buffer.from(buf.subarray(MESSAGE_HEADER + length));
        wipe(buf);
        buf = rest;
        const decoded = decodeFrame(frame);
        const header = decodeHeader(frame.subarray(0, HEADER_BYTES));
        const sequence = header.ok ? header.value.sequence : frame.length >= Offset.sequence + 8 ? frame.readBigUInt64LE(Offset.sequence) : 0n;
        wipe(frame);
        if (!decoded.ok) {
          logger.warn({ code: decoded.error.code, problem: decoded.error.message }, "malformed frame from the filter endpoint refused");
          answer(c, id, "rejected", sequence);
          continue;
        }
        options.handle(decoded.value).then(
          (status) => answer(c, id, status, sequence),
          (err: unknown) => {
            logger.error({ err: (err as Error).message }, "frame handling failed; the filter will keep the frame");
            answer(c, id, "retryLater", sequence);
          },
        );
      }
    });
    c.on("error", (err) => logger.error({ err: err.message }, "pipe helper could not start"));
    c.on("exit", (code) => {
      wipe(buf);
      if (closing) return;
      logger.error({ code }, "pipe helper exited; the filter spools until it is back");
      restartTimer = setTimeout(start, options.restartMs ?? 1_000);
    });
  };

  start();
  logger.info({ endpoint: options.pipeName, helper: options.command[0] }, "listening for the filter's frames (SYSTEM-only pipe, remote clients rejected)");
  return {
    close: async () => {
      closing = true;
      clearTimeout(restartTimer);
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once("exit", () => resolve());
        c.stdin?.end(); // the helper exits when its stdin closes
        setTimeout(() => c.kill(), 2_000).unref();
      });
    },
  };
}
