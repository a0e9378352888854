import { parseArgs } from "node:util";
import { z } from "zod";

/**
 * Sandbox settings from argv (`--port 8443`) or env (`SANDBOX_PORT=8443`); argv wins.
 * The client secret is env-only so it never shows in a process listing.
 */
export interface SandboxCliConfig {
  port: number;
  host: string;
  tenantId: string;
  clientId: string;
  clientSecret?: string;
  clientCertFile?: string;
  appRoles: string[];
  usersFile?: string;
  stateFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
  pkiDir?: string;
  writeBudget: { writes: number; windowMs: number };
}

const OPTIONS = {
  port: "SANDBOX_PORT",
  host: "SANDBOX_HOST",
  "tenant-id": "SANDBOX_TENANT_ID",
  "client-id": "SANDBOX_CLIENT_ID",
  "client-cert": "SANDBOX_CLIENT_CERT",
  "app-roles": "SANDBOX_APP_ROLES",
  users: "SANDBOX_USERS_FILE",
  "state-file": "SANDBOX_STATE_FILE",
  "tls-cert": "SANDBOX_TLS_CERT",
  "tls-key": "SANDBOX_TLS_KEY",
  "pki-dir": "SANDBOX_PKI_DIR",
  "write-budget": "SANDBOX_WRITE_BUDGET",
} as const;

const schema = z
  .object({
    port: z.coerce.number().int().min(0).max(65535).default(0),
    host: z.string().default("127.0.0.1"),
    "tenant-id": z.string().min(1).default("00000000-0000-0000-0000-00000000cafe"),
    "client-id": z.string().min(1).default("00000000-0000-0000-0000-0000000a9910"),
    "client-cert": z.string().optional(),
    "app-roles": z.string().default("User.ReadWrite.All"),
    users: z.string().optional(),
    "state-file": z.string().optional(),
    "tls-cert": z.string().optional(),
    "tls-key": z.string().optional(),
    "pki-dir": z.string().optional(),
    // "<writes>/<seconds>", the documented default being 3000 writes per 150 s.
    "write-budget": z
      .string()
      .regex(/^\d+\/\d+$/, "expected <writes>/<seconds>, e.g. 3000/150")
      .default("3000/150"),
  })
  .refine((c) => (c["tls-cert"] && c["tls-key"]) || c["pki-dir"], {
    message: "give --tls-cert and --tls-key, or --pki-dir (SANDBOX_TLS_CERT/SANDBOX_TLS_KEY or SANDBOX_PKI_DIR)",
  });

export function readSandboxConfig(argv: string[], env: NodeJS.ProcessEnv): SandboxCliConfig {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.keys(OPTIONS).map((name) => [name, { type: "string" as const }])),
    strict: true,
  });
  const merged: Record<string, string | undefined> = {};
  for (const [name, envName] of Object.entries(OPTIONS)) {
    merged[name] = (values as Record<string, string | undefined>)[name] ?? env[envName] ?? undefined;
  }
  const parsed = schema.parse(merged);
  const [writes, seconds] = parsed["write-budget"].split("/").map(Number) as [number, number];
  return {
    port: parsed.port,
    host: parsed.host,
    tenantId: parsed["tenant-id"],
    clientId: parsed["client-id"],
    clientSecret: env.SANDBOX_CLIENT_SECRET || undefined,
    clientCertFile: parsed["client-cert"],
    appRoles: parsed["app-roles"]
      .split(",")
      .map((r) => r.trim())
      .filter(Boolean),
    usersFile: parsed.users,
    stateFile: parsed["state-file"],
    tlsCertFile: parsed["tls-cert"],
    tlsKeyFile: parsed["tls-key"],
    pkiDir: parsed["pki-dir"],
    writeBudget: { writes, windowMs: seconds * 1000 },
  };
}
