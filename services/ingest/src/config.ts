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
    maxMessageBytes: z.number().int().min(1024).max(4 * 1024 * 1024).default(64 * 1024),
    /** Key ids agents may seal to (the reset-executor's current and previous public keys). */
    acceptedKeyIds: z.array(z.string().regex(/^[0-9a-f]{16}$/, "key ids are 16 lowercase hex digits")).min(1),
    /** Changes committed per transaction at most (group commit under load). */
    maxBatch: z.number().int().min(1).max(1000).default(128),
  }),
});

export type IngestConfig = z.infer<typeof ingestConfigSchema>;
