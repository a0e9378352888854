import { spawn } from "node:child_process";

export type Unprotect = (blob: Buffer) => Promise<Buffer>;

/**
 * Decryption failed for a reason that may pass (helper missing, DPAPI refused, no output):
 * the spooled file is kept and retried, never treated as a corrupt frame.
 */
export class UnprotectUnavailableError extends Error {}

/** Spool blobs written without DPAPI (tests, replays on non-Windows hosts): the blob is the frame. */
export const noProtection: Unprotect = async (blob) => Buffer.from(blob);

/**
 * DPAPI without PowerShell: the filter protects each frame with CryptProtectData and an
 * entropy (lsa-filter/src/spool.c) — envelope v2 in SYSTEM's own user scope, v1 (older
 * filters) in machine scope; CryptUnprotectData reads the scope from the blob, so one call
 * opens both, and only a SYSTEM process opens v2 (the agent runs as LocalSystem); Node has no DPAPI binding, so the agent hands the blob to
 * a native helper's `unprotect` subcommand over stdin and reads the frame from its stdout
 * (never a file). The helper is the service wrapper pwsync-service.exe, which names itself in
 * PWSYNC_DPAPI_HELPER when it starts the agent (dc-agent/windows/service/). Any failure, and
 * an empty answer, is UnprotectUnavailableError.
 */
export function dpapiUnprotectWith(helper: string | undefined): Unprotect {
  return (blob) =>
    new Promise<Buffer>((resolve, reject) => {
      if (!helper) {
        reject(new UnprotectUnavailableError("no DPAPI helper: PWSYNC_DPAPI_HELPER is not set (the agent runs outside its Windows service)"));
        return;
      }
      const child = spawn(helper, ["unprotect"], { windowsHide: true, stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      let err = "";
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => (err += b.toString("utf8")));
      child.on("error", (e) => reject(new UnprotectUnavailableError(`DPAPI helper ${helper} could not run: ${e.message}`)));
      child.on("close", (code) => {
        const frame = Buffer.concat(out);
        for (const b of out) b.fill(0);
        if (code === 0 && frame.length > 0) {
          resolve(frame);
          return;
        }
        frame.fill(0);
        reject(
          new UnprotectUnavailableError(`DPAPI helper exited with ${code}${frame.length === 0 ? ", no output" : ""}: ${err.trim().split("\n").pop() ?? ""}`),
        );
      });
      child.stdin.on("error", () => {}); // a helper that died early is reported by "close"
      child.stdin.end(blob);
    });
}

export const dpapiUnprotect: Unprotect = (blob) => dpapiUnprotectWith(process.env.PWSYNC_DPAPI_HELPER)(blob);
