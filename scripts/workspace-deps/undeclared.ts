// The rule behind `npm run check:imports`'s second half: every @pwsync/* workspace a workspace
// imports is declared in its package.json, so a package's layer can be read from its manifest
// and a new cross-workspace import is a visible diff there, not a silent line in some file.
// Production code needs `dependencies`; what only tests, test support and tools import belongs in
// `devDependencies`, so `dependencies` is exactly the production graph. A declaration nothing
// imports any more is reported too, so the manifests do not rot.

export interface WorkspaceManifest {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export interface SourceFile {
  /** Relative to the repository root, with forward slashes. */
  path: string;
  /** Module specifiers the file imports, re-exports or loads with import(). */
  imports: string[];
}

export interface Workspace {
  /** Folder relative to the repository root, e.g. `services/admin`. */
  dir: string;
  manifest: WorkspaceManifest;
  files: SourceFile[];
}

export interface Problem {
  rule:
    | "undeclared-workspace-dependency"
    | "dev-workspace-dependency-in-production"
    | "test-only-workspace-in-dependencies"
    | "unknown-workspace"
    | "unused-workspace-dependency";
  workspace: string;
  file?: string;
  dependency: string;
  message: string;
}

const WORKSPACE_SCOPE = "@pwsync/";
const TEST_OR_TOOL = /(\.test\.ts$|\/test-support\/|\/test-fixtures\/|\/test\/|\/bench\/|\/scripts\/)/;

/** `@pwsync/grpc/client` → `@pwsync/grpc`; undefined for anything outside the workspace scope. */
export function workspaceOf(specifier: string): string | undefined {
  if (!specifier.startsWith(WORKSPACE_SCOPE)) return undefined;
  const [scope, name] = specifier.split("/");
  return name ? `${scope}/${name}` : undefined;
}

export function isTestOrTool(file: string): boolean {
  return TEST_OR_TOOL.test(file);
}

export function findWorkspaceDependencyProblems(workspaces: Workspace[]): Problem[] {
  const known = new Set(workspaces.map((w) => w.manifest.name));
  const problems: Problem[] = [];
  for (const ws of workspaces) {
    const runtime = new Set(Object.keys(ws.manifest.dependencies ?? {}).filter((d) => d.startsWith(WORKSPACE_SCOPE)));
    const dev = new Set(Object.keys(ws.manifest.devDependencies ?? {}).filter((d) => d.startsWith(WORKSPACE_SCOPE)));
    const used = new Set<string>();
    const usedInProduction = new Set<string>();
    for (const file of ws.files) {
      for (const dependency of new Set(file.imports.map(workspaceOf))) {
        if (!dependency || dependency === ws.manifest.name) continue;
        used.add(dependency);
        if (!isTestOrTool(file.path)) usedInProduction.add(dependency);
        const where = { workspace: ws.dir, file: file.path, dependency };
        if (!known.has(dependency)) {
          problems.push({ rule: "unknown-workspace", ...where, message: `${file.path} imports ${dependency}, which no workspace is called` });
        } else if (isTestOrTool(file.path)) {
          if (!runtime.has(dependency) && !dev.has(dependency))
            problems.push({
              rule: "undeclared-workspace-dependency",
              ...where,
              message: `${file.path} imports ${dependency}: add it to ${ws.dir}/package.json devDependencies (test or tool code)`,
            });
        } else if (dev.has(dependency) && !runtime.has(dependency)) {
          problems.push({
            rule: "dev-workspace-dependency-in-production",
            ...where,
            message: `${file.path} imports ${dependency}, declared only in devDependencies of ${ws.dir}/package.json: production code needs it in dependencies`,
          });
        } else if (!runtime.has(dependency)) {
          problems.push({
            rule: "undeclared-workspace-dependency",
            ...where,
            message: `${file.path} imports ${dependency}: add it to ${ws.dir}/package.json dependencies`,
          });
        }
      }
    }
    for (const dependency of runtime) {
      if (used.has(dependency) && !usedInProduction.has(dependency))
        problems.push({
          rule: "test-only-workspace-in-dependencies",
          workspace: ws.dir,
          dependency,
          message: `${ws.dir}/package.json lists ${dependency} in dependencies, but only tests or tools import it: move it to devDependencies`,
        });
    }
    for (const dependency of [...runtime, ...dev]) {
      if (!used.has(dependency))
        problems.push({
          rule: "unused-workspace-dependency",
          workspace: ws.dir,
          dependency,
          message: `${ws.dir}/package.json declares ${dependency}, which nothing in ${ws.dir} imports`,
        });
    }
  }
  return problems;
}
