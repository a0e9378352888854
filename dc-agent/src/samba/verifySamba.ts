import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { promisify } from "node:util";
import type { AgentConfig } from "../config.js";
import type { CheckResult } from "../verify/verify.js";
import { sambaPaths } from "./sambaSource.js";
import { readSambaState } from "./state.js";

const run = promisify(execFile);

async function check(name: string, body: () => Promise<string>): Promise<CheckResult> {
  try {
    return { check: name, ok: true, detail: await body() };
  } catch (err) {
    return { check: name, ok: false, detail: (err as Error).message.split("\n")[0]! };
  }
}

/** `gpg --with-colons` records of one key in one keyring (empty when absent). */
async function keyRecords(home: string, keyId: string, secret: boolean): Promise<string[][]> {
  try {
    const { stdout } = await run("gpg", ["--batch", "--with-colons", secret ? "--list-secret-keys" : "--list-keys", keyId], {
      env: { ...process.env, GNUPGHOME: home },
    });
    return stdout.split("\n").map((l) => l.split(":"));
  } catch {
    return [];
  }
}

/**
 * `dc-agent verify` on a Samba DC: the key ids in smb.conf, both keyrings, the hook,
 * syncpasswords running, and the last delivery (README "Samba AD domain controllers").
 */
export async function sambaChecks(config: AgentConfig): Promise<CheckResult[]> {
  const samba = config.samba!;
  const results: CheckResult[] = [];
  let keyIds: string[] = [];
  results.push(
    await check("samba: password hash gpg key ids", async () => {
      const { stdout } = await run(samba.sambaTool, ["testparm", "-s", samba.smbConf, "--suppress-prompt", "--parameter-name=password hash gpg key ids"]);
      keyIds = stdout.split(/[\s,]+/).filter((k) => k.length > 0);
      if (keyIds.length === 0) throw new Error(`not set in ${samba.smbConf}: Samba stores no cleartext for syncpasswords (run dc-agent/samba/install.sh)`);
      return `${keyIds.join(", ")} (${samba.smbConf})`;
    }),
  );
  for (const id of keyIds) {
    results.push(
      await check(`samba: agent keyring has the secret key`, async () => {
        const recs = await keyRecords(samba.gnupgHome, id, true);
        if (!recs.some((r) => r[0] === "sec")) throw new Error(`no secret key ${id} in ${samba.gnupgHome}: syncpasswords cannot decrypt`);
        if (!recs.some((r) => r[0] === "ssb" && r[11]?.includes("e"))) throw new Error(`key ${id} has no encryption subkey`);
        return `${id} in ${samba.gnupgHome}`;
      }),
    );
    results.push(
      await check(`samba: DC keyring has the public key`, async () => {
        const pub = (await keyRecords(samba.dcGnupgHome, id, false)).find((r) => r[0] === "pub");
        if (!pub) throw new Error(`no public key ${id} in ${samba.dcGnupgHome}: every password change on this DC fails`);
        // Samba refuses a key of unknown validity ("Unusable public key").
        if (!["u", "f"].includes(pub[1] ?? ""))
          throw new Error(`public key ${id} in ${samba.dcGnupgHome} is not trusted (validity "${pub[1]}"): password changes fail with "Unusable public key"`);
        return `${id} in ${samba.dcGnupgHome} (trusted)`;
      }),
    );
  }
  results.push(
    await check("samba: hook script", async () => {
      accessSync(samba.hookScript, constants.X_OK);
      return samba.hookScript;
    }),
  );
  const paths = sambaPaths(config.agent.dataDir);
  results.push(
    await check("samba: syncpasswords running", async () => {
      const pidFile = `${paths.cacheLdb}.pid`;
      const pid = existsSync(pidFile) ? Number.parseInt(readFileSync(pidFile, "utf8").trim(), 10) : NaN;
      let cmdline = "";
      try {
        cmdline = Number.isInteger(pid) ? readFileSync(`/proc/${pid}/cmdline`, "utf8") : "";
      } catch {
        cmdline = "";
      }
      if (!cmdline.includes("syncpasswords")) throw new Error("not running: is the dc-agent running? (its log says why syncpasswords stopped)");
      return `pid ${pid}`;
    }),
  );
  results.push(
    await check("samba: last delivery", async () => {
      const state = readSambaState(paths.state);
      if (!state.baseline) throw new Error("the agent has not started its first run yet");
      if (!state.baseline.done) throw new Error(`first run in progress (${state.accounts.size} accounts recorded so far)`);
      const last = state.lastDeliveryAt
        ? `${state.lastDeliveryAt.toISOString()} (${Math.round((Date.now() - state.lastDeliveryAt.getTime()) / 1000)} s ago)`
        : "none yet";
      return `${last}; ${state.accounts.size} accounts known, ${[...state.accounts.values()].filter((a) => a.synced).length} synced`;
    }),
  );
  return results;
}
