import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

/** Plain-text table: a header row, columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return `${[line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")}\n`;
}

export function when(ts: Timestamp | undefined): string {
  return ts
    ? timestampDate(ts)
        .toISOString()
        .replace(/\.\d{3}Z$/, "Z")
    : "-";
}

export function ago(ts: Timestamp | undefined, now = Date.now()): string {
  if (!ts) return "never";
  const s = Math.round((now - timestampDate(ts).getTime()) / 1000);
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/** "2h", "30m", "7d" → a Date that long ago; otherwise an ISO timestamp. */
export function parseWhen(text: string, now = Date.now()): Date {
  const relative = /^(\d+)([smhd])$/.exec(text);
  if (relative) return new Date(now - Number(relative[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[relative[2] as "s" | "m" | "h" | "d"]);
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new Error(`not a time: ${JSON.stringify(text)} (use ISO 8601 or 30m / 2h / 7d)`);
  return date;
}

export function shortEnum(name: string | undefined, prefix: string | RegExp = ""): string {
  return (name ?? "").replace(prefix, "").toLowerCase() || "-";
}
