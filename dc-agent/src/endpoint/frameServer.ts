import { chmodSync, existsSync, mkdirSync, rmSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { Logger } from "@pwsync/log";
import { decodeFrame, decodeHeader, encodeAck, HEADER_BYTES, MAX_FRAME_BYTES, Offset, wipe, type AckStatus, type DecodedFrame } from "../frame/index.js";

export interface FrameServerOptions {
  /** Unix socket path, or a Windows named pipe (\\.\pipe\name): the same node `net` code. */
  path: string;
  readTimeoutMs: number;
  maxConnections: number;
  logger: Logger;
  handle(frame: DecodedFrame): Promise<AckStatus>;
}

export interface FrameServer {
  close(): Promise<void>;
}

const isPipe = (p: string) => p.startsWith("\\\\.\\pipe\\") || p.startsWith("\\\\?\\pipe\\");

/**
 * The filter's local endpoint. Protocol (docs/frame-format.md): one connection per frame; the
 * filter writes one frame, the agent answers one 16-byte ack, then both close. Anything
 * malformed gets a log line naming the problem (never the bytes) and a "rejected" ack when a
 * sequence can be read; the server keeps serving.
 */
export async function startFrameServer(options: FrameServerOptions): Promise<FrameServer> {
  const { logger } = options;
  if (!isPipe(options.path)) {
    mkdirSync(path.dirname(options.path), { recursive: true, mode: 0o700 });
    // A socket file left by a killed agent would make listen() fail with EADDRINUSE.
    if (existsSync(options.path)) rmSync(options.path, { force: true });
  }
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    serveOne(socket, options);
  });
  server.maxConnections = options.maxConnections;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // Windows: libuv creates the first pipe instance with FILE_FLAG_FIRST_PIPE_INSTANCE, so a
    // squatter already holding the name makes this fail (EADDRINUSE) instead of sharing it.
    server.listen(options.path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  if (!isPipe(options.path)) chmodSync(options.path, 0o600);
  server.on("error", (err) => logger.error({ err: err.message }, "frame endpoint error"));
  logger.info({ endpoint: options.path }, "listening for the filter's frames");
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function sequenceOf(buf: Buffer): bigint {
  return buf.length >= Offset.sequence + 8 ? buf.readBigUInt64LE(Offset.sequence) : 0n;
}

function serveOne(socket: net.Socket, options: FrameServerOptions): void {
  const { logger } = options;
  let buf = Buffer.alloc(0);
  let expected = 0;
  let finished = false;
  /** The frame is complete and being handled; the filter's half-close is expected now. */
  let handling = false;

  const finish = (status: AckStatus, sequence: bigint) => {
    if (finished) return;
    finished = true;
    wipe(buf);
    socket.setTimeout(0);
    if (!socket.destroyed && socket.writable) socket.end(encodeAck({ status, sequence }));
    else socket.destroy();
  };
  const refuse = (problem: string, code: string) => {
    logger.warn({ code, problem }, "malformed frame from the filter endpoint refused");
    finish("rejected", sequenceOf(buf));
  };

  socket.setTimeout(options.readTimeoutMs, () => {
    if (finished) return;
    logger.warn({ received: buf.length, timeoutMs: options.readTimeoutMs }, "frame not completed in time; connection dropped");
    finished = true;
    wipe(buf);
    socket.destroy();
  });
  socket.on("error", (err) => {
    if (!finished) logger.warn({ err: err.message }, "filter connection failed before the frame was complete");
    finished = true;
    wipe(buf);
  });
  socket.on("end", () => {
    if (!finished && !handling) refuse(`connection closed after ${buf.length} of ${expected || `at least ${HEADER_BYTES}`} bytes`, "Truncated");
  });
  socket.on("data", (chunk: Buffer) => {
    if (finished || handling) {
      wipe(chunk);
      return;
    }
    const next = Buffer.alloc(buf.length + chunk.length);
    buf.copy(next);
    chunk.copy(next, buf.length);
    wipe(buf);
    wipe(chunk);
    buf = next;
    if (expected === 0 && buf.length >= HEADER_BYTES) {
      const header = decodeHeader(buf.subarray(0, HEADER_BYTES));
      if (!header.ok) return refuse(header.error.message, header.error.code);
      expected = header.value.frameBytes;
    }
    if (expected === 0 && buf.length >= 8) {
      // Magic and version are checkable early: garbage is refused before 40 bytes arrive.
      const early = decodeHeader(buf);
      if (!early.ok && early.error.code !== "Truncated") return refuse(early.error.message, early.error.code);
    }
    if (expected > 0 && buf.length > expected) return refuse(`${buf.length - expected} bytes after a ${expected}-byte frame`, "TrailingBytes");
    if (buf.length > MAX_FRAME_BYTES) return refuse(`more than ${MAX_FRAME_BYTES} bytes`, "FrameTooLarge");
    if (expected > 0 && buf.length === expected) {
      const decoded = decodeFrame(buf);
      if (!decoded.ok) return refuse(decoded.error.message, decoded.error.code);
      const sequence = decoded.value.sequence;
      handling = true;
      wipe(buf);
      socket.pause();
      options.handle(decoded.value).then(
        (status) => finish(status, sequence),
        (err: unknown) => {
          logger.error({ err: (err as Error).message }, "frame handling failed; the filter will keep the frame");
          finish("retryLater", sequence);
        },
      );
    }
  });
}
