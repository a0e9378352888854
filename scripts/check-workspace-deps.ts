// `npm run check:imports`, second half: reads every workspace's package.json and the imports of
// its source files, and fails when a workspace imports an @pwsync/* workspace it does not
// declare (the rule and its reasons: scripts/workspace-deps/undeclared.ts).
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { findWorkspaceDependencyProblems, type SourceFile, type Workspace, type WorkspaceManifest } from "./workspace-deps/undeclared.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const NOT_SOURCE_DIRS = new Set(["node_modules", "dist", "dist-dev", ".state", "gen"]);

function workspaceDirs(): string[] {
  const patterns = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { workspaces: string[] }).workspaces;
  return patterns.flatMap((pattern) => {
    if (!pattern.endsWith("/*")) return [pattern];
    const parent = pattern.slice(0, -2);
    return readdirSync(path.join(root, parent), { withFileTypes: true })
      .filter((e) => e.isDirectory() && statSync(path.join(root, parent, e.name, "package.json"), { throwIfNoEntry: false }))
      .map((e) => `${parent}/${e.name}`);
  });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) return NOT_SOURCE_DIRS.has(e.name) ? [] : sourceFiles(rel);
    return SOURCE.test(e.name) && !e.name.endsWith(".d.ts") ? [rel] : [];
  });
}

/** Imports, re-exports and import() calls, as TypeScript's own pre-processor finds them (not fooled by comments or strings). */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(path.join(root, file), "utf8"), true, true);
  return info.importedFiles.map((f) => f.fileName);
}

const workspaces: Workspace[] = workspaceDirs().map((dir) => ({
  dir,
  manifest: JSON.parse(readFileSync(path.join(root, dir, "package.json"), "utf8")) as WorkspaceManifest,
  files: sourceFiles(dir).map((file): SourceFile => ({ path: file, imports: importsOf(file) })),
}));
const problems = findWorkspaceDependencyProblems(workspaces);
for (const p of problems) console.error(`  error ${p.rule}: ${p.message}`);
if (problems.length > 0) {
  console.error(`\nx ${problems.length} workspace dependency problems (${workspaces.length} workspaces checked).`);
  process.exit(1);
}
console.log(`✔ every workspace declares the @pwsync/* workspaces it imports (${workspaces.length} workspaces checked)`);
