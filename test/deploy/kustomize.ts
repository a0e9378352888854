import { readFileSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";

/**
 * `kustomize build` for the subset of kustomize that k8s/ uses (there is no kustomize binary or
 * pure-JS port here): resources (files and directories, recursively), namespace, images,
 * replicas, and strategic-merge patches whose bodies contain no lists. For patches without lists,
 * a strategic merge is a plain recursive map merge, which is what this does; `unsupported`
 * reports any field or list-bearing patch that would make this renderer differ from kustomize.
 */
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

const SUPPORTED = new Set(["apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"]);

export interface Rendered {
  manifests: Manifest[];
  unsupported: string[];
  /** Every file the kustomizations load, relative to the repository root. */
  files: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function containsList(v: unknown): boolean {
  if (Array.isArray(v)) return true;
  return isObject(v) && Object.values(v).some(containsList);
}

function merge(base: unknown, patch: unknown): unknown {
  if (!isObject(base) || !isObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = v === null ? undefined : merge(base[k], v);
  return out;
}

function readDocs(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, "utf8"))
    .map((d) => {
      if (d.errors.length) throw new Error(`${file}: ${d.errors[0]!.message}`);
      return d.toJS() as Manifest | null;
    })
    .filter((d): d is Manifest => d !== null);
}

const key = (m: { kind: string; metadata: { name: string } }) => `${m.kind}/${m.metadata.name}`;

export function kustomizeBuild(dir: string, root = dir): Rendered {
  const kfile = path.join(dir, "kustomization.yaml");
  const k = parseYaml(readFileSync(kfile, "utf8")) as Record<string, unknown>;
  const unsupported = Object.keys(k)
    .filter((f) => !SUPPORTED.has(f))
    .map((f) => `${kfile}: field ${f}`);
  const files = [path.relative(root, kfile)];
  let manifests: Manifest[] = [];
  for (const entry of (k.resources as string[] | undefined) ?? []) {
    const target = path.resolve(dir, entry);
    if (entry.endsWith(".yaml") || entry.endsWith(".yml")) {
      manifests.push(...readDocs(target));
      files.push(path.relative(root, target));
    } else {
      const sub = kustomizeBuild(target, root);
      manifests.push(...sub.manifests);
      unsupported.push(...sub.unsupported);
      files.push(...sub.files);
    }
  }
  for (const patch of (k.patches as Array<{ path?: string; target?: unknown; patch?: string }> | undefined) ?? []) {
    if (!patch.path || patch.target || patch.patch) {
      unsupported.push(`${kfile}: only file patches identified by their own kind/name are supported`);
      continue;
    }
    const file = path.resolve(dir, patch.path);
    files.push(path.relative(root, file));
    for (const body of readDocs(file)) {
      if (containsList(body)) unsupported.push(`${file}: patch contains a list (strategic merge would merge it by key)`);
      const i = manifests.findIndex((m) => key(m) === key(body));
      if (i < 0) unsupported.push(`${file}: patch target ${key(body)} not found`);
      else manifests[i] = merge(manifests[i], body) as Manifest;
    }
  }
  for (const r of (k.replicas as Array<{ name: string; count: number }> | undefined) ?? []) {
    const target = manifests.find((m) => ["Deployment", "StatefulSet"].includes(m.kind) && m.metadata.name === r.name);
    if (!target) unsupported.push(`${kfile}: replicas for unknown ${r.name}`);
    else (target.spec as Record<string, unknown>).replicas = r.count;
  }
  const images = (k.images as Array<{ name: string; newName?: string; newTag?: string }> | undefined) ?? [];
  if (images.length)
    manifests = manifests.map((m) => JSON.parse(JSON.stringify(m), (_k, v) => (isObject(v) && typeof v.image === "string" ? retag(v, images) : v)) as Manifest);
  if (typeof k.namespace === "string") {
    for (const m of manifests) if (m.kind !== "Namespace") m.metadata.namespace = k.namespace as string;
  }
  return { manifests, unsupported, files };
}

function retag(container: Record<string, unknown>, images: Array<{ name: string; newName?: string; newTag?: string }>): Record<string, unknown> {
  const image = container.image as string;
  const name = image.split("@")[0]!.replace(/:[^/:]+$/, "");
  const rule = images.find((i) => i.name === name);
  if (!rule) return container;
  const tag = rule.newTag ?? (image.includes(":") ? image.split(":").at(-1) : undefined);
  return { ...container, image: `${rule.newName ?? name}${tag ? `:${tag}` : ""}` };
}
