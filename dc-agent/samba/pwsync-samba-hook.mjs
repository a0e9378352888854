#!/usr/bin/env node
// The --script `samba-tool user syncpasswords` runs for each account whose password changed
// (registered in its cache by the dc-agent). It hands the LDIF on stdin, in memory, to the
// running dc-agent over its root-only Unix socket and answers `DONE-EXIT:` only after the agent
// has sealed and durably queued the change (or decided to skip it). Any other outcome exits
// non-zero: syncpasswords then stops without advancing its cache, and the agent restarts it,
// which delivers the change again. Plain Node, no dependencies: it starts in ~50 ms.
import net from "node:net";

const socketPath = process.env.PWSYNC_SAMBA_HOOK_SOCKET;
const header = JSON.stringify({ mode: process.env.PWSYNC_SAMBA_HOOK_MODE ?? "live", intervalMs: Number(process.env.PWSYNC_SAMBA_BULK_INTERVAL_MS ?? 0) });
const timeoutMs = Number(process.env.PWSYNC_SAMBA_HOOK_TIMEOUT_MS ?? 300_000);

function fail(message) {
  process.stdout.write(`ERROR: ${message}\n`);
  process.exit(1);
}
if (!socketPath) fail("PWSYNC_SAMBA_HOOK_SOCKET is not set (the dc-agent starts syncpasswords with it)");

const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const ldif = Buffer.concat(chunks);
  for (const c of chunks) c.fill(0);
  const reply = [];
  const conn = net.createConnection(socketPath);
  const timer = setTimeout(() => fail(`no answer from the dc-agent within ${timeoutMs} ms`), timeoutMs);
  conn.on("connect", () => {
    conn.write(`${header}\n`);
    conn.end(ldif, () => ldif.fill(0));
  });
  conn.on("data", (c) => reply.push(c));
  conn.on("error", (err) => fail(`dc-agent not reachable at ${socketPath}: ${err.message}`));
  conn.on("close", () => {
    clearTimeout(timer);
    ldif.fill(0);
    const text = Buffer.concat(reply).toString("utf8").trim();
    if (text.startsWith("OK ")) {
      process.stdout.write(`DONE-EXIT: ${text.slice(3)}\n`);
      process.exit(0);
    }
    fail(text || "the dc-agent closed the connection without an answer");
  });
});
