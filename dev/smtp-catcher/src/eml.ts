import { readFileSync } from "node:fs";

/** The parts of a caught message a developer or a test looks at. */
export interface ParsedEml {
  /** Header names lower-cased; repeated headers keep every value in order. */
  headers: Map<string, string[]>;
  subject: string;
  from: string;
  to: string;
  messageId: string;
  /** The decoded text/plain body (the first text part of a multipart message). */
  text: string;
}

/**
 * A deliberately small RFC 5322/2045 reader: enough for the plain-text alerts pwsync sends
 * (7bit, quoted-printable, base64; encoded-word subjects; simple multiparts). Not a general
 * MIME parser.
 */
export function parseEml(raw: Buffer | string): ParsedEml {
  const source = typeof raw === "string" ? raw : raw.toString("utf8");
  const { headers, body } = splitHeaders(source);
  const first = (name: string) => decodeEncodedWords(headers.get(name)?.[0] ?? "");
  return {
    headers,
    subject: first("subject"),
    from: first("from"),
    to: first("to"),
    messageId: first("message-id"),
    text: textOf(headers, body),
  };
}

export function readEml(file: string): ParsedEml {
  return parseEml(readFileSync(file));
}

function splitHeaders(source: string): { headers: Map<string, string[]>; body: string } {
  const match = /\r?\n\r?\n/.exec(source);
  const head = match ? source.slice(0, match.index) : source;
  const body = match ? source.slice(match.index + match[0].length) : "";
  const headers = new Map<string, string[]>();
  // Continuation lines (folding) start with whitespace and belong to the previous header.
  const unfolded = head.replace(/\r?\n[ \t]+/g, " ");
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const values = headers.get(name) ?? [];
    values.push(line.slice(colon + 1).trim());
    headers.set(name, values);
  }
  return { headers, body };
}

function parameter(headerValue: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, "i").exec(headerValue);
  return match ? (match[1] ?? match[2]) : undefined;
}

function textOf(headers: Map<string, string[]>, body: string): string {
  const contentType = headers.get("content-type")?.[0] ?? "text/plain";
  if (/^multipart\//i.test(contentType)) {
    const boundary = parameter(contentType, "boundary");
    if (!boundary) return "";
    const parts = body.split(new RegExp(`\\r?\\n?--${escapeRegExp(boundary)}(?:--)?[ \\t]*\\r?\\n?`));
    for (const part of parts) {
      if (!part.trim()) continue;
      const parsed = splitHeaders(part);
      const type = parsed.headers.get("content-type")?.[0] ?? "text/plain";
      if (/^(text\/plain|multipart\/)/i.test(type)) {
        const text = textOf(parsed.headers, parsed.body);
        if (text) return text;
      }
    }
    return "";
  }
  const encoding = (headers.get("content-transfer-encoding")?.[0] ?? "7bit").toLowerCase();
  const charset = (parameter(contentType, "charset") ?? "utf-8").toLowerCase();
  return decodeBody(body, encoding, charset);
}

function decodeBody(body: string, encoding: string, charset: string): string {
  let bytes: Buffer;
  if (encoding === "base64") bytes = Buffer.from(body.replace(/\s+/g, ""), "base64");
  else if (encoding === "quoted-printable") bytes = decodeQuotedPrintable(body);
  else bytes = Buffer.from(body, "utf8");
  return bytes
    .toString(charset === "utf-8" || charset === "utf8" || charset === "us-ascii" ? "utf8" : "latin1")
    .replace(/\r\n/g, "\n")
    .replace(/\n$/, "");
}

function decodeQuotedPrintable(text: string): Buffer {
  const softBreaksRemoved = text.replace(/=\r?\n/g, "");
  const bytes: number[] = [];
  for (let i = 0; i < softBreaksRemoved.length; i++) {
    const ch = softBreaksRemoved[i]!;
    const hex = softBreaksRemoved.slice(i + 1, i + 3);
    if (ch === "=" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(ch, "utf8")) bytes.push(b);
    }
  }
  return Buffer.from(bytes);
}

/** RFC 2047 encoded words (=?utf-8?Q?...?= / =?utf-8?B?...?=), adjacent words joined. */
export function decodeEncodedWords(value: string): string {
  return value.replace(/(\?=)\s+(=\?)/g, "$1$2").replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, charset: string, kind: string, data: string) => {
    const bytes = kind.toUpperCase() === "B" ? Buffer.from(data, "base64") : decodeQuotedPrintable(data.replace(/_/g, " "));
    return bytes.toString(/^utf-?8$/i.test(charset) ? "utf8" : "latin1");
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
