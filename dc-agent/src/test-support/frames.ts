import net from "node:net";
import { decodeAck, encodeFrame, FILETIME_UNIX_EPOCH, type Ack } from "../frame/index.js";

let nextSequence = BigInt(Date.now()) * 1000n;

export function frameFor(account: string, password: string, sequence = nextSequence++): Buffer {
  const filetime = BigInt(Date.now()) * 10000n + FILETIME_UNIX_EPOCH;
  const r = encodeFrame({
    accountUtf16le: Buffer.from(account, "utf16le"),
    passwordUtf16le: Buffer.from(password, "utf16le"),
    sequence,
    capturedAtFiletime: filetime,
  });
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

/** What the C filter does: connect, write one frame, read the 16-byte ack. */
export function sendRaw(socketPath: string, bytes: Buffer, options: { half?: boolean } = {}): Promise<Ack | "closed"> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    socket.on("connect", () => {
      socket.write(bytes);
      if (options.half !== false) socket.end();
    });
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", reject);
    socket.on("close", () => {
      const buf = Buffer.concat(chunks);
      if (buf.length === 0) return resolve("closed");
      const ack = decodeAck(buf);
      if (!ack.ok) return reject(new Error(ack.error.message));
      resolve(ack.value);
    });
  });
}
