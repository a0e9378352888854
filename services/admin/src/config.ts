import { databaseSection, graphSection, z } from "@pwsync/config";

export const watchdogSection = z
  .object({
    enabled: z.boolean().default(true),
    intervalSeconds: z.number().min(1).default(30),
    /** An agent whose last heartbeat is older than this has stopped (agents beat every ~30 s). */
    heartbeatMissedSeconds: z.number().int().min(1).default(180),
    /** A queued change older than this on an agent means the agent cannot reach ingest. */
    queueAgeSeconds: z.number().int().min(1).default(900),
    /** A change left in the filter's spool longer than this is not being drained (the agent scans every 10 s). */
    spoolAgeSeconds: z.number().int().min(1).default(600),
    /**
     * A known domain controller that sent no change for this long probably lost its filter or
     * agent. Set it to the longest quiet spell normal for the smallest site.
     */
    dcSilentHours: z.number().positive().default(24),
    /** Domain controllers that must be sending changes, beyond those already seen in heartbeats. */
    knownDomainControllers: z.array(z.string().min(1)).default([]),
    /** Email the notifier's admin recipients on every raised and cleared alert. */
    email: z.boolean().default(true),
  })
  .default({
    enabled: true,
    intervalSeconds: 30,
    heartbeatMissedSeconds: 180,
    queueAgeSeconds: 900,
    spoolAgeSeconds: 600,
    dcSilentHours: 24,
    knownDomainControllers: [],
    email: true,
  });

export const adminSection = z.object({
  host: z.string().default("0.0.0.0"),
  port: z.number().int().min(0).max(65535).default(7444),
  tls: z.object({ caFile: z.string().min(1), certFile: z.string().min(1), keyFile: z.string().min(1) }),
  /**
   * Refused calls are recorded in the admin-audit stream; beyond this many a minute they are
   * only counted (and the count recorded with the next one), so probing cannot flood the log.
   */
  deniedRecordsPerMinute: z.number().int().min(1).default(30),
  watchdog: watchdogSection,
});

/** pwsync.yaml: database, graph (optional: Verify Credentials), admin, notifier (optional: test alert, watchdog email). */
export const adminConfigSchema = z.object({
  database: databaseSection,
  graph: graphSection.optional(),
  admin: adminSection,
  notifier: z.record(z.string(), z.unknown()).optional(),
});

export type AdminConfig = z.infer<typeof adminConfigSchema>;
export type WatchdogSettings = z.infer<typeof watchdogSection>;
