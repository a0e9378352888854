import { describe, expect, it } from "vitest";
import { findWorkspaceDependencyProblems, type Workspace } from "./undeclared.js";

const proto: Workspace = { dir: "packages/proto", manifest: { name: "@pwsync/proto" }, files: [] };
const testkit: Workspace = { dir: "packages/testkit", manifest: { name: "@pwsync/testkit" }, files: [] };
const crypto = (manifest: Partial<Workspace["manifest"]>, files: Workspace["files"]): Workspace => ({
  dir: "packages/crypto",
  manifest: { name: "@pwsync/crypto", ...manifest },
  files,
});
const rulesOf = (workspaces: Workspace[]) => findWorkspaceDependencyProblems(workspaces).map((p) => [p.rule, p.file ?? p.workspace, p.dependency]);

describe("workspace dependency declarations", () => {
  it("accepts production imports declared in dependencies and test imports declared in devDependencies", () => {
    const ws = crypto({ dependencies: { "@pwsync/proto": "*" }, devDependencies: { "@pwsync/testkit": "*" } }, [
      { path: "packages/crypto/src/seal.ts", imports: ["@pwsync/proto", "node:crypto", "./keys.js"] },
      { path: "packages/crypto/src/seal.int.test.ts", imports: ["@pwsync/testkit", "@pwsync/proto", "@pwsync/crypto"] },
    ]);
    expect(rulesOf([ws, proto, testkit])).toEqual([]);
  });

  it("names the file and the workspace a production import is missing from", () => {
    const ws = crypto({}, [{ path: "packages/crypto/src/seal.ts", imports: ["@pwsync/proto/gen"] }]);
    const [problem, ...rest] = findWorkspaceDependencyProblems([ws, proto]);
    expect(rest).toEqual([]);
    expect(problem).toMatchObject({ rule: "undeclared-workspace-dependency", file: "packages/crypto/src/seal.ts", dependency: "@pwsync/proto" });
    expect(problem!.message).toContain("packages/crypto/package.json dependencies");
  });

  it("refuses a production import declared only as a devDependency, and a test import declared nowhere", () => {
    const ws = crypto({ devDependencies: { "@pwsync/proto": "*" } }, [
      { path: "packages/crypto/src/seal.ts", imports: ["@pwsync/proto"] },
      { path: "packages/crypto/src/test-support/keys.ts", imports: ["@pwsync/testkit"] },
    ]);
    expect(rulesOf([ws, proto, testkit])).toEqual([
      ["dev-workspace-dependency-in-production", "packages/crypto/src/seal.ts", "@pwsync/proto"],
      ["undeclared-workspace-dependency", "packages/crypto/src/test-support/keys.ts", "@pwsync/testkit"],
    ]);
  });

  it("keeps dependencies to the production graph: a workspace only tests import belongs in devDependencies", () => {
    const ws = crypto({ dependencies: { "@pwsync/testkit": "*" } }, [{ path: "packages/crypto/src/seal.unit.test.ts", imports: ["@pwsync/testkit"] }]);
    expect(rulesOf([ws, testkit])).toEqual([["test-only-workspace-in-dependencies", "packages/crypto", "@pwsync/testkit"]]);
  });

  it("reports declarations nothing imports and imports of workspaces that do not exist", () => {
    const ws = crypto({ dependencies: { "@pwsync/proto": "*" } }, [{ path: "packages/crypto/src/seal.ts", imports: ["@pwsync/mail"] }]);
    expect(rulesOf([ws, proto])).toEqual([
      ["unknown-workspace", "packages/crypto/src/seal.ts", "@pwsync/mail"],
      ["unused-workspace-dependency", "packages/crypto", "@pwsync/proto"],
    ]);
  });
});
