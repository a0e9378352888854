import { z } from "@pwsync/config";

export const ingestConfigSchema = z.object({
  database: z.object({ url: z.string().min(1, "the Postgres connection string is required") }),
  ingest: z.object({
    // The seed's "Listen IPv4" and "Listen Port".
    host: z.string().default("0.0.0.0"),
    port: z.number().int().min(0).max(65535).default(7443),
    tls: z.object({
      caFile: z.string().min(1),
      certFile: z.string().min(1),
      keyFile: z.string().min(1),
    }),
    /** Largest message accepted from an agent; a change is a few hundred bytes. */
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .max(4 * 1024 * 1024)
      .default(64 * 1024),
    /**
     * Key ids agents may seal to, besides the reset-executor's key epochs (stream sealing-keys),
     * which add the current and overlapping keys and remove retired and destroyed ones.
     */
    acceptedKeyIds: z.array(z.string().regex(/^[0-9a-f]{16}$/, "key ids are 16 lowercase hex digits")).min(1),
    /** Changes committed per transaction at most (group commit under load). */
    maxBatch: z.number().int().min(1).max(1000).default(128),
    /**
     * Domains (UPN suffixes and mail domains) each agent may touch, by agent name (the DC in its
     * certificate's URI SAN). An agent not listed may change nobody's password.
     */
    agentScopes: z.record(z.string(), z.array(z.string().regex(/^@?[A-Za-z0-9.-]+$/, "a scope entry is a domain such as contoso.example")).min(1)).optional(),
    /** How far ahead of ingest's clock a change's changed_at may be; later ones are refused. */
    maxClockSkewSeconds: z.number().int().min(0).max(3600).optional(),
    /** Per-agent submission limit (all streams of one agent together). */
    agentRateLimit: z.object({ perSecond: z.number().positive(), burst: z.number().int().min(1) }).optional(),
    /** Requests read from one stream but not yet acked, at most; beyond it ingest stops reading (flow control). */
    maxInFlightPerStream: z.number().int().min(1).max(10_000).optional(),
    /** How often revocations are re-read; open streams of a revoked certificate end within this. */
    revocationPollMs: z.number().int().min(100).max(60_000).optional(),
  }),
});

export type IngestConfig = z.infer<typeof ingestConfigSchema>;
