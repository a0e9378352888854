import { execFile } from "node:child_process";
import { statSync } from "node:fs";

/**
 * Who created a spool file. Only the filter (SYSTEM, inside LSASS) may put one there; a file
 * owned by anyone else was planted (issue 11, finding 3: a user who pre-created the folder
 * could drop forged frames) and is never drained as a change.
 */
export type OwnerVerdict = { trusted: true } | { trusted: false; owner: string };
export type SpoolOwnerCheck = (files: readonly string[]) => Promise<OwnerVerdict[]>;

/** The decision, given the owner SID (Windows) or uid (elsewhere) and whom we trust (pure). */
export function ownerVerdict(owner: string | number, trusted: string | number): OwnerVerdict {
  return owner === trusted ? { trusted: true } : { trusted: false, owner: String(owner) };
}

/** Elsewhere (tests, replays): the file must belong to the account the agent runs as. */
export const posixOwnerCheck: SpoolOwnerCheck = async (files) => {
  const me = process.getuid?.() ?? -1;
  return files.map((f) => ownerVerdict(statSync(f).uid, me));
};

// Windows: node's stat has no owner SID, so the native helper (dc-agent/native/pwsync-pipe.exe
// owner <file>...) prints this process's SID, then each file's owner SID. Trusted = the agent's
// own account, which is SYSTEM (LocalSystem), the filter's account in LSASS.
const BATCH = 64;

/** Parses the helper's answer (pure): "self <SID>", then "owner <SID>" or "error <code>" per file. */
export function parseOwnerLines(stdout: string, files: number): OwnerVerdict[] {
  const lines = stdout.split(/\r?\n/).filter((l) => l.length > 0);
  const self = /^self (\S+)$/.exec(lines[0] ?? "")?.[1];
  if (!self) throw new Error("owner helper did not name its own account");
  const rest = lines.slice(1);
  if (rest.length !== files) throw new Error(`owner helper answered for ${rest.length} of ${files} files`);
  return rest.map((l) => {
    const m = /^(owner|error) (\S+)$/.exec(l);
    if (!m) throw new Error(`owner helper line not understood: ${l.slice(0, 80)}`);
    return m[1] === "owner" ? ownerVerdict(m[2]!, self) : { trusted: false, owner: `unreadable (Win32 error ${m[2]})` };
  });
}

export function nativeOwnerCheck(helper: string | undefined): SpoolOwnerCheck {
  return async (files) => {
    if (files.length === 0) return [];
    if (!helper)
      throw new Error(
        "no owner helper: set endpoint.pipeHelper or PWSYNC_PIPE_HELPER (dc-agent/native/pwsync-pipe.exe); spool files are not drained without an owner check",
      );
    const out: OwnerVerdict[] = [];
    for (let i = 0; i < files.length; i += BATCH) {
      const batch = files.slice(i, i + BATCH);
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(helper, ["owner", ...batch], { windowsHide: true, maxBuffer: 1 << 22 }, (err, so) =>
          err ? reject(new Error(`owner helper failed: ${err.message.split("\n")[0]}`)) : resolve(so),
        ),
      );
      out.push(...parseOwnerLines(stdout, batch.length));
    }
    return out;
  };
}
