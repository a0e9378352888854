import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Client, InvalidCredentialsError, type Entry } from "ldapts";
import type { AgentConfig } from "../config.js";
import { ACCOUNTDISABLE, buildLookupFilter, checkFilterTemplate } from "./filter.js";

export interface DirectoryAccount {
  dn: string;
  mail?: string;
  userPrincipalName?: string;
  objectGuid?: Buffer;
  /** pwdLastSet as a date; undefined when AD says 0 ("must change at next logon") or it is absent. */
  passwordLastSet?: Date;
  userAccountControl: number;
  disabled: boolean;
}

export type LookupResult = { kind: "matched"; account: DirectoryAccount } | { kind: "notMatched"; reason: string };

/** The directory could not be asked (bind refused, DC unreachable, TLS failure, timeout). */
export class DirectoryError extends Error {
  constructor(
    message: string,
    readonly kind: "bind" | "unreachable" | "tls" | "search",
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const ATTRIBUTES = ["mail", "userPrincipalName", "objectGUID", "pwdLastSet", "userAccountControl"];
const FILETIME_UNIX_EPOCH_MS = 11644473600000n;

function first(value: Entry[string] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return undefined;
  return Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}

export function filetimeToDate(text: string | undefined): Date | undefined {
  if (!text || !/^\d+$/.test(text)) return undefined;
  const ft = BigInt(text);
  // 0 = must change at next logon; 0x7FFF... = never: neither is a change time.
  if (ft === 0n || ft >= 0x7fffffffffffffffn) return undefined;
  return new Date(Number(ft / 10000n - FILETIME_UNIX_EPOCH_MS));
}

function classify(err: unknown, url: string): DirectoryError {
  if (err instanceof DirectoryError) return err;
  const e = err as NodeJS.ErrnoException & { code?: string | number };
  if (err instanceof InvalidCredentialsError) {
    return new DirectoryError(`LDAP bind refused for the configured bindDn at ${url}: invalid credentials (check ldap.bindDn and the password file)`, "bind", {
      cause: err,
    });
  }
  const code = typeof e.code === "string" ? e.code : "";
  if (["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET", "EAI_AGAIN"].includes(code) || /timeout|closed/i.test(e.message ?? "")) {
    return new DirectoryError(`domain controller at ${url} is unreachable: ${e.message}`, "unreachable", { cause: err });
  }
  if (/certificate|self.signed|altnames|TLS|SSL/i.test(`${code} ${e.message}`)) {
    return new DirectoryError(`TLS to the domain controller at ${url} failed: ${e.message} (ldap.caFile / ldap.serverName)`, "tls", { cause: err });
  }
  return new DirectoryError(`LDAP error at ${url}: ${e.message}`, "search", { cause: err });
}

/**
 * Looks accounts up in AD with one bound connection, re-established after any failure.
 * Binds only over TLS (LDAPS or StartTLS): the bind password never crosses the wire in clear.
 */
export class Directory {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private readonly tls: ConnectionOptions;

  constructor(private readonly config: Omit<AgentConfig["ldap"], "retryDelayMs">) {
    checkFilterTemplate(config.filter);
    if (config.url.startsWith("ldap://") && !config.startTls) {
      throw new DirectoryError("ldap.url is ldap:// without ldap.startTls: the bind password would cross the network in clear", "tls");
    }
    this.tls = {
      ...(config.caFile ? { ca: readFileSync(config.caFile) } : {}),
      ...(config.serverName ? { servername: config.serverName } : {}),
      minVersion: "TLSv1.2",
    };
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      url: this.config.url,
      timeout: this.config.timeoutMs,
      connectTimeout: this.config.timeoutMs,
      // ldapts opens TLS at once when given tlsOptions; StartTLS must begin in clear.
      ...(this.config.startTls ? {} : { tlsOptions: this.tls }),
    });
    try {
      if (this.config.startTls) await client.startTLS(this.tls);
      await client.bind(this.config.bindDn, readFileSync(this.config.bindPasswordFile, "utf8").trim());
      return client;
    } catch (err) {
      await client.unbind().catch(() => {});
      throw classify(err, this.config.url);
    }
  }

  private async bound(): Promise<Client> {
    if (this.client) return this.client;
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    this.client = await this.connecting;
    return this.client;
  }

  /** Binds (if not bound yet); throws DirectoryError with a message for an admin. */
  async check(): Promise<void> {
    await this.bound();
  }

  async lookup(accountName: string): Promise<LookupResult> {
    // The filter escapes NUL correctly, but AD/Samba compare values only up to a NUL, so
    // "alice\0" would match alice. No real account name contains one (the frame decoder
    // refuses them too).
    if (accountName.includes("\u0000")) return { kind: "notMatched", reason: "the account name contains U+0000" };
    try {
      return await this.lookupOnce(accountName);
    } catch (err) {
      // A connection idle long enough can be closed by the DC; one fresh attempt.
      await this.reset();
      const first = classify(err, this.config.url);
      if (first.kind === "bind" || first.kind === "tls") throw first;
      try {
        return await this.lookupOnce(accountName);
      } catch (again) {
        await this.reset();
        throw classify(again, this.config.url);
      }
    }
  }

  private async lookupOnce(accountName: string): Promise<LookupResult> {
    const client = await this.bound();
    const filter = buildLookupFilter(this.config.filter, accountName, this.config.groups);
    const { searchEntries } = await client.search(this.config.baseDn, {
      scope: "sub",
      filter,
      attributes: ATTRIBUTES,
      explicitBufferAttributes: ["objectGUID"],
      sizeLimit: 2,
      timeLimit: Math.ceil(this.config.timeoutMs / 1000),
    });
    if (searchEntries.length === 0) return { kind: "notMatched", reason: "no account matches the filter (not found, or outside the configured scope)" };
    if (searchEntries.length > 1)
      return { kind: "notMatched", reason: `the filter matches ${searchEntries.length} entries; it must select exactly one account` };
    const entry = searchEntries[0]!;
    const uac = Number(first(entry.userAccountControl) ?? "0");
    const guid = entry.objectGUID;
    const objectGuid = Buffer.isBuffer(guid) ? guid : Array.isArray(guid) && Buffer.isBuffer(guid[0]) ? guid[0] : undefined;
    const account: DirectoryAccount = {
      dn: entry.dn,
      userAccountControl: uac,
      disabled: (uac & ACCOUNTDISABLE) !== 0,
      ...(first(entry.mail) ? { mail: first(entry.mail)! } : {}),
      ...(first(entry.userPrincipalName) ? { userPrincipalName: first(entry.userPrincipalName)! } : {}),
      ...(objectGuid ? { objectGuid } : {}),
      ...(filetimeToDate(first(entry.pwdLastSet)) ? { passwordLastSet: filetimeToDate(first(entry.pwdLastSet))! } : {}),
    };
    if (account.disabled && this.config.dropDisabledAccounts)
      return { kind: "notMatched", reason: "the account is disabled in AD (ldap.dropDisabledAccounts)" };
    return { kind: "matched", account };
  }

  private async reset(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await client?.unbind().catch(() => {});
  }

  async close(): Promise<void> {
    await this.reset();
  }
}
