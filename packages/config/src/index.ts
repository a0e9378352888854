import { existsSync, readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";

export class ConfigError extends Error {}

function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function coerce(value: string): unknown {
  // A value in double quotes is always a string: the way to pass an all-digit secret.
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  if (value === "true") return true;
  if (value === "false") return false;
  if (/^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (value.startsWith("[") || value.startsWith("{")) {
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }
  return value;
}

/**
 * Environment overrides: PWSYNC_EXECUTOR__RETRY_LIMIT=7 sets executor.retryLimit. Double
 * underscore separates levels; single underscores become camelCase; values are coerced from
 * JSON-ish text (numbers, booleans, arrays); a value in double quotes stays a string.
 */
export function environmentOverrides(env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith("PWSYNC_") || value === undefined) continue;
    if (name === "PWSYNC_CONFIG" || name === "PWSYNC_LOG_LEVEL") continue;
    const segments = name.slice("PWSYNC_".length).split("__").map(camel);
    let node = result;
    segments.forEach((segment, index) => {
      if (index === segments.length - 1) node[segment] = coerce(value);
      else node = (node[segment] ??= {}) as Record<string, unknown>;
    });
  }
  return result;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isObject(base) || !isObject(override)) return override === undefined ? base : override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) merged[key] = deepMerge(base[key], value);
  return merged;
}

function describeIssues(error: z.ZodError, source: string): string {
  const lines = error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join(".") : "(top level)";
    const envName = issue.path.length
      ? "PWSYNC_" +
        issue.path
          .map((p) =>
            String(p)
              .replace(/[A-Z]/g, (c) => `_${c}`)
              .toUpperCase(),
          )
          .join("__")
      : "";
    return `  - ${where}: ${issue.message}${envName ? ` (set it in ${source} or ${envName})` : ""}`;
  });
  return `invalid configuration:\n${lines.join("\n")}`;
}

/**
 * One YAML file (PWSYNC_CONFIG, or `file`) + environment overrides, validated by `schema`.
 * Every problem is reported at once, each naming the setting and where to set it.
 */
export function loadConfig<S extends z.ZodType>(schema: S, options: { file?: string; env?: NodeJS.ProcessEnv; overrides?: unknown } = {}): z.infer<S> {
  const env = options.env ?? process.env;
  const file = options.file ?? env.PWSYNC_CONFIG;
  let fromFile: unknown = {};
  if (file) {
    if (!existsSync(file)) throw new ConfigError(`configuration file ${file} does not exist`);
    try {
      fromFile = parseYaml(readFileSync(file, "utf8")) ?? {};
    } catch (err) {
      throw new ConfigError(`configuration file ${file} is not valid YAML: ${(err as Error).message}`);
    }
  }
  const merged = deepMerge(deepMerge(fromFile, options.overrides ?? {}), environmentOverrides(env));
  const parsed = schema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, file ?? "the config file"));
  return parsed.data;
}

export { z };
export * from "./sections.js";
