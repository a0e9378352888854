import { execFile } from "node:child_process";

export type Unprotect = (blob: Buffer) => Promise<Buffer>;

/** Spool blobs written without DPAPI (tests, replays on non-Windows hosts): the blob is the frame. */
export const noProtection: Unprotect = async (blob) => Buffer.from(blob);

// The filter protects each frame with CryptProtectData(CRYPTPROTECT_LOCAL_MACHINE) and this
// entropy (lsa-filter/src/spool.c). Node has no DPAPI binding, so the agent asks PowerShell's
// ProtectedData over stdin/stdout: the frame never touches the disk in clear. Not exercised
// by the Linux test suite (no DPAPI there).
const ENTROPY = "pwsync-spool-v1";
const SCRIPT =
  "Add-Type -AssemblyName System.Security;" +
  "$b=[Convert]::FromBase64String([Console]::In.ReadToEnd());" +
  `$e=[Text.Encoding]::ASCII.GetBytes('${ENTROPY}');` +
  "$p=[Security.Cryptography.ProtectedData]::Unprotect($b,$e,[Security.Cryptography.DataProtectionScope]::LocalMachine);" +
  "[Console]::Out.Write([Convert]::ToBase64String($p));[Array]::Clear($p,0,$p.Length)";

export const dpapiUnprotect: Unprotect = (blob) =>
  new Promise<Buffer>((resolve, reject) => {
    const child = execFile("powershell.exe", ["-NoProfile", "-NonInteractive", "-Command", SCRIPT], { windowsHide: true, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) reject(new Error(`DPAPI unprotect failed: ${err.message.split("\n")[0]}`));
      else resolve(Buffer.from(stdout.trim(), "base64"));
    });
    child.stdin?.end(blob.toString("base64"));
  });
