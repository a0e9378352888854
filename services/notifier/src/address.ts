import addressparser from "nodemailer/lib/addressparser";

/**
 * The one mailbox `input` names, or undefined. Parsed with nodemailer's own RFC 5322 address
 * parser, i.e. exactly as nodemailer would read it if it were handed the string: anything that
 * parses to anything but a single bare address — a list ("bob,attacker@evil.example"), a group,
 * a display name, a comment, an address that is not the whole input — is refused, so an
 * attacker-chosen `mail` attribute can never add or replace a recipient.
 */
export function singleMailbox(input: string): string | undefined {
  const value = input.trim().toLowerCase();
  if (value.length === 0 || value.length > 254 || /[\u0000-\u0020\u007f-\u009f]/.test(value)) return undefined;
  const parsed = addressparser(value);
  if (parsed.length !== 1) return undefined;
  const [only] = parsed;
  if (!only || "group" in only || only.name !== "" || only.address !== value) return undefined;
  const at = value.lastIndexOf("@");
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (at < 1 || local.length > 64 || local.includes("@")) return undefined;
  // A routable domain name: labels of letters, digits and hyphens, at least two of them.
  if (!/^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(domain)) return undefined;
  if (!/^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$/.test(local) || local.startsWith(".") || local.endsWith(".") || local.includes("..")) return undefined;
  return value;
}
