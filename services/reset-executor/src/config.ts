import { databaseSection, graphSection, z } from "@pwsync/config";

export const executorSection = z.object({
  /** Folder of X25519 private sealing keys (*.key.pem); several during a key rotation. */
  keysDir: z.string().min(1),
  /** The seed's "Password Reset Retry Limit": attempts per change before it fails for good. */
  retryLimit: z.number().int().min(1).max(100).default(5),
  backoff: z
    .object({ baseMs: z.number().int().min(10).default(1000), maxMs: z.number().int().min(100).default(60_000) })
    .default({ baseMs: 1000, maxMs: 60_000 }),
  /**
   * Client-side budget for Graph identity writes. Microsoft documents 3,000 writes per 150 s
   * per app per tenant; the default keeps 5% headroom. One window for all executor replicas (write-budget.ts).
   */
  rateLimit: z
    .object({
      enabled: z.boolean().default(true),
      writesPerWindow: z.number().int().min(1).default(2850),
      windowSeconds: z.number().min(1).default(150),
    })
    .default({ enabled: true, writesPerWindow: 2850, windowSeconds: 150 }),
  /**
   * Fencing (ARCHITECTURE.md): a PATCH leaves at most `maxSendDelayMs` after its ownership check
   * or not at all, and Graph is assumed to apply a request, if ever, within `graceMs` after our
   * client gave up on it (graph.requestTimeoutMs). Until then another change's password for the
   * same user waits.
   */
  fencing: z
    .object({ maxSendDelayMs: z.number().int().min(100).default(2000), graceMs: z.number().int().min(0).default(30_000) })
    .default({ maxSendDelayMs: 2000, graceMs: 30_000 }),
  forceChangePasswordNextSignIn: z.boolean().default(false),
  /** Minimum password length Entra enforces (cloud default 8). */
  minPasswordLength: z.number().int().min(1).max(256).default(8),
  healthPort: z.number().int().min(0).max(65535).default(0),
  /**
   * How long a failed change keeps its sealed password so an admin can retry it after fixing
   * the cause (AdminService.RetryChange); 0 shreds at once. Also closes the window for changes
   * that failed in the resolver (with resolver.retainSecretOnFailure). Off by default: a
   * sealed password then lives only until its change is terminal; opting in trades that for
   * retries without a new password change.
   */
  retainSecretOnFailureHours: z.number().min(0).max(168).default(0),
  /**
   * Sealing key epochs (crypto-shredding): a key older than rotateAfterDays is replaced by a new
   * one in keysDir; ingest accepts the old one for overlapDays more; then, once no sealed secret
   * refers to it, its private key is overwritten and deleted, so copies of ciphertext sealed to it
   * (WAL, dead tuples, backups) become unreadable. rotateAfterDays 0 = rotate by hand. With a
   * read-only keysDir (a secret store) the executor records epochs and logs what is due.
   */
  sealingKeys: z
    .object({ rotateAfterDays: z.number().min(0).max(3650).default(30), overlapDays: z.number().min(0).max(365).default(7) })
    .default({ rotateAfterDays: 30, overlapDays: 7 }),
});

export const executorConfigSchema = z.object({
  database: databaseSection,
  graph: graphSection,
  executor: executorSection,
});

export type ExecutorConfig = z.infer<typeof executorConfigSchema>;
export type ExecutorSection = z.infer<typeof executorSection>;
