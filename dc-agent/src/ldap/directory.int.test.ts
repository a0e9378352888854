import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentConfig } from "../config.js";
import { acquireSambaDc, type SambaDc } from "../test-support/samba.js";
import { Directory, DirectoryError } from "./directory.js";

let dc: SambaDc;
const open: Directory[] = [];
const SEED_FILTER = "(&(samAccountName={0})(objectCategory=person)(objectClass=user))";

beforeAll(() => {
  dc = acquireSambaDc();
}, 600_000);
afterAll(async () => {
  for (const d of open) await d.close();
  dc?.release();
});

function directory(overrides: Partial<AgentConfig["ldap"]> = {}): Directory {
  const d = new Directory({
    url: dc.ldapsUrl,
    baseDn: dc.baseDn,
    startTls: false,
    caFile: dc.caFile,
    serverName: dc.serverName,
    bindDn: dc.bindDn,
    bindPasswordFile: dc.bindPasswordFile,
    filter: SEED_FILTER,
    groups: [],
    dropDisabledAccounts: false,
    timeoutMs: 5_000,
    ...overrides,
  });
  open.push(d);
  return d;
}

async function mailOf(d: Directory, account: string): Promise<string | null> {
  const r = await d.lookup(account);
  return r.kind === "matched" ? (r.account.mail ?? "") : null;
}

describe("LDAP lookup against a Samba AD DC", () => {
  it("reads mail, userPrincipalName, objectGUID, pwdLastSet and userAccountControl over LDAPS", async () => {
    const r = await directory().lookup("alice");
    expect(r.kind).toBe("matched");
    if (r.kind !== "matched") return;
    expect(r.account).toMatchObject({
      dn: dc.dn("alice"),
      mail: "alice@pwsync.test",
      userPrincipalName: "alice@pwsync.test",
      userAccountControl: 512,
      disabled: false,
    });
    expect(r.account.objectGuid).toHaveLength(16);
    expect(r.account.passwordLastSet!.getTime()).toBeGreaterThan(Date.UTC(2020, 0, 1));
    expect(r.account.passwordLastSet!.getTime()).toBeLessThanOrEqual(Date.now() + 60_000);
  });

  it("works over StartTLS on the plain LDAP port", async () => {
    expect(await mailOf(directory({ url: dc.ldapUrl, startTls: true }), "bob")).toBe("bob@pwsync.test");
  });

  it("drops an account that does not exist", async () => {
    expect(await directory().lookup("nobody-here")).toMatchObject({ kind: "notMatched" });
  });

  it("finds accounts whose names are full of filter metacharacters, and only them", async () => {
    const d = directory();
    expect(await mailOf(d, "o(brien)")).toBe("obrien@pwsync.test");
    expect(await mailOf(d, "ann)(!~&")).toBe("ann@pwsync.test");
    expect(await mailOf(d, "zoë")).toBe("zoe@pwsync.test");
  });

  it.each(["*", "al*", "*)(samAccountName=alice", "alice)(|(objectClass=*", "alice\\2a", "alice\u0000", "a\\", "(alice)"])(
    "treats %j as a literal name: no wildcard, no injected clause",
    async (name) => {
      expect(await directory().lookup(name)).toMatchObject({ kind: "notMatched" });
    },
  );

  it("scopes by the seed's direct memberOf clause in the filter", async () => {
    const d = directory({ filter: `(&(samAccountName={0})(objectCategory=person)(objectClass=user)(memberOf=${dc.dn("Password Sync")}))` });
    expect(await mailOf(d, "alice")).toBe("alice@pwsync.test");
    expect(await mailOf(d, "bob")).toBeNull();
    // Direct memberOf does not see nested membership: carol is in Nested Team, inside Password Sync.
    expect(await mailOf(d, "carol")).toBeNull();
  });

  it("scopes by groups including nested membership at any depth (LDAP_MATCHING_RULE_IN_CHAIN)", async () => {
    const d = directory({ groups: [dc.dn("Password Sync")] });
    expect(await mailOf(d, "alice")).toBe("alice@pwsync.test");
    expect(await mailOf(d, "carol")).toBe("carol@pwsync.test");
    expect(await mailOf(d, "dan")).toBe("dan@pwsync.test");
    expect(await mailOf(d, "bob")).toBeNull();
    expect(await mailOf(directory({ groups: [dc.dn("Deep Team"), dc.dn("Nested Team")] }), "alice")).toBeNull();
  });

  it("reports a disabled account, and drops it when configured to", async () => {
    const r = await directory().lookup("erin");
    expect(r).toMatchObject({ kind: "matched", account: { disabled: true } });
    expect(await directory({ dropDisabledAccounts: true }).lookup("erin")).toMatchObject({ kind: "notMatched", reason: expect.stringMatching(/disabled/) });
  });

  it("fails with a clear error when the bind is refused", async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "dc-agent-ldap-")), "wrong");
    writeFileSync(file, "not-the-password", { mode: 0o600 });
    const err = await directory({ bindPasswordFile: file })
      .lookup("alice")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryError);
    expect((err as DirectoryError).kind).toBe("bind");
    expect((err as DirectoryError).message).toMatch(/bind refused.*invalid credentials/);
  });

  it("fails with a clear error when the DC is unreachable", async () => {
    const err = await directory({ url: "ldaps://127.77.0.1:1" })
      .check()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryError);
    expect((err as DirectoryError).kind).toBe("unreachable");
    expect((err as DirectoryError).message).toMatch(/unreachable/);
  });

  it("refuses a DC certificate that is not trusted", async () => {
    const { caFile: _ignored, ...rest } = { caFile: undefined };
    void _ignored;
    const err = await directory({ ...rest, caFile: undefined })
      .check()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DirectoryError);
    expect((err as DirectoryError).kind).toBe("tls");
  });

  it("refuses plain ldap:// without StartTLS", () => {
    expect(() => directory({ url: dc.ldapUrl, startTls: false })).toThrow(/in clear/);
  });
});
