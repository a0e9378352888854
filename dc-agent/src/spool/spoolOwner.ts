import { execFile } from "node:child_process";
import { statSync } from "node:fs";

/**
 * Who created a spool file. Only the filter (SYSTEM, inside LSASS) may put one there; a file
 * owned by anyone else was planted (issue 11, finding 3: a user who pre-created the folder
 * could drop forged frames) and is never drained as a change.
 */
export type OwnerVerdict = { trusted: true } | { trusted: false; owner: string };
export type SpoolOwnerCheck = (files: readonly string[]) => Promise<OwnerVerdict[]>;

const SYSTEM_SID = "S-1-5-18";

/** The decision, given the owner SID (Windows) or uid (elsewhere) and whom we trust (pure). */
export function ownerVerdict(owner: string | number, trusted: string | number): OwnerVerdict {
  return owner === trusted ? { trusted: true } : { trusted: false, owner: String(owner) };
}

/** Elsewhere (tests, replays): the file must belong to the account the agent runs as. */
export const posixOwnerCheck: SpoolOwnerCheck = async (files) => {
  const me = process.getuid?.() ?? -1;
  return files.map((f) => ownerVerdict(statSync(f).uid, me));
};

// Windows: node's stat has no owner SID; one PowerShell call per drain prints each file's owner
// SID. Not exercised by the Linux suite (no Windows ACLs there; wine keeps no owners either).
const SCRIPT =
  "$ErrorActionPreference='Stop';" +
  "foreach($f in [Console]::In.ReadToEnd().Split([char]10)){if($f){" +
  "[Console]::Out.WriteLine((Get-Acl -LiteralPath $f).GetOwner([Security.Principal.SecurityIdentifier]).Value)}}";

export const windowsOwnerCheck: SpoolOwnerCheck = (files) =>
  new Promise((resolve, reject) => {
    if (files.length === 0) return resolve([]);
    const child = execFile("powershell.exe", ["-NoProfile", "-NonInteractive", "-Command", SCRIPT], { windowsHide: true, maxBuffer: 1 << 22 }, (err, stdout) => {
      if (err) return reject(new Error(`cannot read spool file owners: ${err.message.split("\n")[0]}`));
      const sids = stdout.split(/\r?\n/).filter((l) => l.length > 0);
      if (sids.length !== files.length) return reject(new Error(`owner lookup returned ${sids.length} owners for ${files.length} files`));
      resolve(sids.map((sid) => ownerVerdict(sid, SYSTEM_SID)));
    });
    child.stdin?.end(files.join("\n"));
  });
