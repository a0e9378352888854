// The LDIF `samba-tool user syncpasswords` hands its --script for one account, parsed without
// ever turning the password into a JS string (strings cannot be wiped): the base64 of
// virtualClearTextUTF16 is decoded byte by byte into a Buffer the caller wipes.

export interface SyncedAccount {
  objectGuid: string;
  sAMAccountName: string;
  userPrincipalName?: string;
  /** FILETIME (100 ns since 1601); 0 = "must change at next logon". */
  pwdLastSet: bigint;
  /** msDS-KeyVersionNumber: +1 on every password write, so it orders writes within one pwdLastSet. */
  keyVersion?: number;
  userAccountControl?: number;
  isDeleted: boolean;
  /** UTF-16LE, absent when the change carried no cleartext (hash-only set, e.g. SAMR level 18). */
  clearTextUtf16?: Buffer;
}

const CLEARTEXT = "virtualcleartextutf16";

const B64 = new Int16Array(256).fill(-1);
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".split("").forEach((c, i) => (B64[c.charCodeAt(0)] = i));

/** base64 bytes → bytes, without an intermediate string; undefined on a malformed input. */
export function decodeBase64Bytes(src: Buffer): Buffer | undefined {
  const out = Buffer.alloc(Math.floor((src.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let n = 0;
  let padding = false;
  for (const byte of src) {
    if (byte === 0x3d) {
      padding = true;
      continue;
    }
    const v = B64[byte]!;
    if (v < 0 || padding) {
      out.fill(0);
      return undefined;
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  acc = 0;
  const result = Buffer.alloc(n);
  out.copy(result, 0, 0, n);
  out.fill(0);
  return result;
}

/** Unfolds LDIF continuation lines (RFC 2849: a line starting with one space continues the previous). */
function logicalLines(ldif: Buffer): { line: Buffer; copied: boolean }[] {
  const lines: Buffer[][] = [];
  let start = 0;
  for (let i = 0; i <= ldif.length; i++) {
    if (i === ldif.length || ldif[i] === 0x0a) {
      let end = i;
      if (end > start && ldif[end - 1] === 0x0d) end--;
      const line = ldif.subarray(start, end);
      if (line.length > 0 && line[0] === 0x20 && lines.length > 0) lines.at(-1)!.push(line.subarray(1));
      else if (line.length > 0 && line[0] !== 0x23) lines.push([line]);
      start = i + 1;
    }
  }
  return lines.map((parts) => (parts.length === 1 ? { line: parts[0]!, copied: false } : { line: Buffer.concat(parts), copied: true }));
}

export type ParseResult = { ok: true; account: SyncedAccount } | { ok: false; reason: string };

/** Parses one object's LDIF; the caller owns (and wipes) both `ldif` and the returned cleartext. */
export function parseSyncLdif(ldif: Buffer): ParseResult {
  const text = new Map<string, string>();
  let clear: Buffer | undefined;
  let malformed = false;
  for (const { line, copied } of logicalLines(ldif)) {
    const colon = line.indexOf(0x3a);
    if (colon <= 0) continue;
    const name = line.subarray(0, colon).toString("latin1").toLowerCase();
    const base64 = line[colon + 1] === 0x3a;
    let valueStart = colon + (base64 ? 2 : 1);
    while (line[valueStart] === 0x20) valueStart++;
    const raw = line.subarray(valueStart);
    if (name === CLEARTEXT) {
      clear = base64 ? decodeBase64Bytes(raw) : undefined;
      if (!clear) malformed = true;
      // The caller wipes `ldif`; an unfolded copy of the encoded password is ours to wipe.
      if (copied) line.fill(0);
      continue;
    }
    if (!text.has(name)) text.set(name, base64 ? Buffer.from(raw.toString("latin1"), "base64").toString("utf8") : raw.toString("utf8"));
  }
  const fail = (reason: string): ParseResult => {
    clear?.fill(0);
    return { ok: false, reason };
  };
  if (malformed) return fail("virtualClearTextUTF16 is not valid base64");
  const objectGuid = text.get("objectguid");
  if (!objectGuid || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(objectGuid)) return fail("no objectGUID");
  const isDeleted = text.get("isdeleted")?.toUpperCase() === "TRUE";
  const sAMAccountName = text.get("samaccountname");
  if (!sAMAccountName && !isDeleted) return fail("no sAMAccountName");
  const pls = text.get("pwdlastset") ?? "0";
  if (!/^\d+$/.test(pls)) return fail("pwdLastSet is not a number");
  const kvno = text.get("msds-keyversionnumber");
  const uac = text.get("useraccountcontrol");
  const upn = text.get("userprincipalname");
  return {
    ok: true,
    account: {
      objectGuid: objectGuid.toLowerCase(),
      sAMAccountName: sAMAccountName ?? "",
      ...(upn ? { userPrincipalName: upn } : {}),
      pwdLastSet: BigInt(pls),
      ...(kvno && /^\d+$/.test(kvno) ? { keyVersion: Number(kvno) } : {}),
      ...(uac && /^-?\d+$/.test(uac) ? { userAccountControl: Number(uac) } : {}),
      isDeleted,
      ...(clear && clear.length > 0 ? { clearTextUtf16: clear } : {}),
    },
  };
}
