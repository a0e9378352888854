import { describe, expect, it } from "vitest";
import { affectsBuild } from "./compiled.js";

describe("affectsBuild", () => {
  it("counts the sources esbuild bundles and what steers it", () => {
    for (const file of [
      "services/ingest/src/main.ts",
      "packages/proto/src/gen/pwsync/v1/admin_pb.ts",
      "packages/pki/package.json",
      "dev/sandbox-tenant/src/main.ts",
      "deploy/container/migrate.ts",
      "scripts/build.mjs",
      "scripts/entry-points.json",
      "package-lock.json",
      "tsconfig.base.json",
    ])
      expect(affectsBuild(file), file).toBe(true);
  });

  it("leaves out tests, their fixtures, docs and installed packages, so editing them does not rebuild", () => {
    for (const file of [
      "services/ingest/src/server.int.test.ts",
      "packages/eventlog/src/test-support/fixture.ts",
      "README.md",
      "test/e2e/stack.e2e.test.ts",
      "packages/devstack/src/node_modules/x/index.js",
      "scripts/bench.ts",
    ])
      expect(affectsBuild(file), file).toBe(false);
  });
});
