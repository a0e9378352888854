import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * Changes ingest refused for good (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) are moved here
 * instead of being retried forever or dropped: one JSON file each, with the sealed change
 * (never a plaintext) and ingest's reason, for an admin to inspect.
 */
export function writeQuarantine(dataDir: string, item: { changeId: string; seq: number; code: string; details: string; change: Buffer }): string {
  const dir = path.join(dataDir, "quarantine");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${item.changeId}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        changeId: item.changeId,
        seq: item.seq,
        code: item.code,
        details: item.details,
        quarantinedAt: new Date().toISOString(),
        sealedChangeBase64: item.change.toString("base64"),
      },
      null,
      2,
    ),
    { mode: 0o600 },
  );
  return file;
}
