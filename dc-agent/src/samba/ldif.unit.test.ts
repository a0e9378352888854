import { describe, expect, it } from "vitest";
import { decodeBase64Bytes, parseSyncLdif } from "./ldif.js";

// Test data only: a made-up value, never a real password.
const secret = Buffer.from("Tst-value-\u00e9\u20ac-42", "utf16le");

function ldifFor(fields: Record<string, string>, clear?: Buffer, fold = 0): Buffer {
  const lines = ["dn: CN=alice,CN=Users,DC=example,DC=test", ...Object.entries(fields).map(([k, v]) => `${k}: ${v}`)];
  if (clear) {
    const b64 = `virtualClearTextUTF16:: ${clear.toString("base64")}`;
    if (fold > 0) {
      lines.push(b64.slice(0, fold));
      for (let i = fold; i < b64.length; i += fold) lines.push(` ${b64.slice(i, i + fold)}`);
    } else lines.push(b64);
  }
  return Buffer.from(`${lines.join("\n")}\n\n`);
}

const base = {
  objectGUID: "F41AF2BB-241D-40C9-B00B-52148BC28B8E",
  sAMAccountName: "alice",
  userPrincipalName: "alice@example.test",
  pwdLastSet: "134402928520268480",
  "msDS-KeyVersionNumber": "3",
  userAccountControl: "512",
};

describe("parseSyncLdif", () => {
  it("given a syncpasswords LDIF, when parsed, then it yields the account's identity, version and cleartext bytes", () => {
    const r = parseSyncLdif(ldifFor(base, secret));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.account).toMatchObject({
      objectGuid: "f41af2bb-241d-40c9-b00b-52148bc28b8e",
      sAMAccountName: "alice",
      userPrincipalName: "alice@example.test",
      pwdLastSet: 134402928520268480n,
      keyVersion: 3,
      userAccountControl: 512,
      isDeleted: false,
    });
    expect(r.account.clearTextUtf16?.equals(secret)).toBe(true);
  });

  it("given a cleartext folded over continuation lines (as ldb writes long values), when parsed, then it is joined", () => {
    const r = parseSyncLdif(ldifFor(base, secret, 7));
    expect(r.ok && r.account.clearTextUtf16?.equals(secret)).toBe(true);
  });

  it("given no cleartext (a hash-only set), when parsed, then the account has none", () => {
    const r = parseSyncLdif(ldifFor(base));
    expect(r.ok && r.account.clearTextUtf16).toBeUndefined();
  });

  it("given a damaged LDIF, when parsed, then it says what is wrong", () => {
    expect(parseSyncLdif(ldifFor({ ...base, objectGUID: "nope" }, secret))).toEqual({ ok: false, reason: "no objectGUID" });
    expect(parseSyncLdif(Buffer.from(`objectGUID: ${base.objectGUID}\nsAMAccountName: a\nvirtualClearTextUTF16:: ***\n`))).toEqual({
      ok: false,
      reason: "virtualClearTextUTF16 is not valid base64",
    });
    expect(parseSyncLdif(ldifFor({ ...base, pwdLastSet: "x" }))).toEqual({ ok: false, reason: "pwdLastSet is not a number" });
  });

  it("given a base64 value, when decoded bytewise, then it matches Node's decoder", () => {
    for (const n of [0, 1, 2, 3, 17, 64]) {
      const bytes = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37) & 0xff));
      expect(decodeBase64Bytes(Buffer.from(bytes.toString("base64")))?.equals(bytes)).toBe(true);
    }
  });
});
