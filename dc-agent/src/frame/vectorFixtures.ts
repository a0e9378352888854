// Loads the shared test vectors (lsa-filter/test/vectors) and the frames the wine harness
// captured from the real C filter (.state/lsa-filter/captured), for the unit tests.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const vectorsDir = join(repoRoot, "lsa-filter/test/vectors");
export const capturedDir = join(repoRoot, ".state/lsa-filter/captured");

export interface Vector {
  name: string;
  file: string;
  hex: string;
  note: string;
  expect: "ok" | "error" | "ack" | "spool";
  decoded?: {
    accountName: string;
    accountNameHex: string;
    passwordHex: string;
    sequence: string;
    capturedAtFiletime: string;
    capturedAt: string;
  };
  error?: { code: string; field?: string };
  ack?: { status: string; sequence: string };
  spool?: { blobHex: string };
}

export function loadVectors(): Vector[] {
  const index = JSON.parse(readFileSync(join(vectorsDir, "vectors.json"), "utf8")) as { vectors: Vector[] };
  return index.vectors;
}

export function vectorBytes(v: Vector): Buffer {
  return readFileSync(join(vectorsDir, v.file));
}

/** `<vector-name>.<n>.bin` files written by lsa-filter/test/harness.c, if a wine run happened. */
export function loadCaptured(): { file: string; vectorName: string; bytes: Buffer }[] {
  if (!existsSync(capturedDir)) return [];
  return readdirSync(capturedDir)
    .filter((f) => f.endsWith(".bin"))
    .sort()
    .map((file) => ({ file, vectorName: file.split(".")[0] ?? file, bytes: readFileSync(join(capturedDir, file)) }));
}
