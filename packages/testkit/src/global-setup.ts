import { startLocalPostgres, type LocalPostgres } from "@pwsync/local-postgres";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";

// One real PostgreSQL server for the whole test run; each test file makes its own databases.
let server: LocalPostgres | undefined;
let dataRoot: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  dataRoot = mkdtempSync(path.join(tmpdir(), "pwsync-test-pg-"));
  server = await startLocalPostgres({ dataDir: path.join(dataRoot, "data") });
  project.provide("postgresPort", server.port);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (dataRoot) rmSync(dataRoot, { recursive: true, force: true });
}

declare module "vitest" {
  export interface ProvidedContext {
    postgresPort: number;
  }
}
