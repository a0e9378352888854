import { telemetrySection } from "@pwsync/telemetry";
import { z } from "@pwsync/config";

// Every option of the seed's Password Client has a home here; README.md maps the names.

const duration = (min: number, max: number) => z.number().int().min(min).max(max);

const serverSection = z.object({
  /** The seed's Host + Port, as "host:port". */
  address: z.string().regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, "use host:port"),
  /** TLS name to verify when `address` is an IP the server certificate does not name. */
  serverName: z.string().min(1).optional(),
});

const RETRY_LIMIT_MOVED =
  "the seed's Password Reset Retry Limit is a server setting now (reset-executor: executor.retryLimit); the agent never gives up delivering a change and raises alarms instead";

const agentConfigObject = z.object({
  agent: z.object({
    /** DNS name of this domain controller, sent with every change and heartbeat. */
    domainController: z.string().min(1),
    /** Folder of the durable queue (the seed's statedb), quarantine, and nothing else. */
    dataDir: z.string().min(1),
  }),
  /** Where the filter hands frames over: a named pipe on Windows, a Unix socket elsewhere. */
  endpoint: z
    .object({
      path: z
        .string()
        .min(1)
        .default(process.platform === "win32" ? "\\\\.\\pipe\\pwsync-agent" : "/run/pwsync/agent.sock"),
      /** A client that does not finish sending its frame in this time is disconnected. */
      readTimeoutMs: duration(100, 60_000).default(5_000),
      /**
       * dc-agent/native/pwsync-pipe.exe: owns the named pipe with a SYSTEM-only DACL and
       * PIPE_REJECT_REMOTE_CLIENTS, which Node cannot set (default: PWSYNC_PIPE_HELPER, set by
       * the Windows service). Without it a Windows pipe gets Node's default DACL, loudly.
       */
      pipeHelper: z.string().min(1).optional(),
      /** Frames handled at once; the filter sends one per connection. */
      maxConnections: z.number().int().min(1).max(256).default(16),
    })
    .prefault({}),
  /** Frames the filter wrote while the agent was down (DPAPI, SYSTEM scope, on Windows). */
  spool: z
    .object({
      /** Default: the filter's own default, %ProgramData%\pwsync\spool (spool/spoolFacts.ts); nobody needs to set it. */
      dir: z.string().min(1).optional(),
      /** "dpapi" on Windows; "none" only for tests and non-Windows replays (blob is the frame). */
      protection: z.enum(["dpapi", "none"]).default(process.platform === "win32" ? "dpapi" : "none"),
      scanIntervalMs: duration(200, 3_600_000).default(10_000),
    })
    .prefault({}),
  ingest: z.object({
    /** The seed's primary Host/Port. */
    primary: serverSection,
    /** The seed's secondary Host/Port: tried immediately when the primary fails. */
    secondary: serverSection.optional(),
    /** The seed's Key, split in two: mTLS identity (who we are) ... */
    tls: z.object({ caFile: z.string().min(1), certFile: z.string().min(1), keyFile: z.string().min(1) }),
    /** ... and the reset-executor's X25519 public key the password is sealed to. */
    sealingPublicKeyFile: z.string().min(1),
    /** The seed's Timeout: how long to wait for a commit ack before resubmitting on a new connection. */
    timeoutMs: duration(500, 600_000).default(30_000),
    /** The seed's Connection Attempts: consecutive failed rounds (primary then secondary) before the fail delay. */
    connectionAttempts: z.number().int().min(1).max(1000).default(3),
    /** Pause between two attempts of one series. */
    attemptPauseMs: duration(0, 60_000).default(1_000),
    /** The seed's Connection Fail Delay, in milliseconds here. */
    connectionFailDelayMs: duration(0, 3_600_000).default(60_000),
    /** While on the secondary, go back to the primary after this long. */
    failbackAfterMs: duration(1_000, 86_400_000).default(300_000),
    /** Changes sent before waiting for acks (ingest commits them in stream order). */
    window: z.number().int().min(1).max(4096).default(256),
    heartbeatIntervalMs: duration(1_000, 3_600_000).default(60_000),
  }),
  ldap: z.object({
    /** The seed's Root Query: LDAP URL of the DC to ask (default: this DC) ... */
    url: z
      .string()
      .regex(/^ldaps?:\/\//, "ldap:// (with startTls) or ldaps://")
      .default("ldaps://localhost:636"),
    /** ... and the base DN searched. */
    baseDn: z.string().min(1),
    /** Upgrade an ldap:// connection with StartTLS; plain LDAP binds are refused. */
    startTls: z.boolean().default(false),
    caFile: z.string().min(1).optional(),
    /** TLS name to verify when `url` names the DC by IP or "localhost". */
    serverName: z.string().min(1).optional(),
    bindDn: z.string().min(1),
    bindPasswordFile: z.string().min(1),
    /** The seed's Filter; `{0}` is replaced by the RFC 4515-escaped account name. */
    filter: z.string().default("(&(samAccountName={0})(objectCategory=person)(objectClass=user))"),
    /** Only members of these groups, nested membership included (LDAP_MATCHING_RULE_IN_CHAIN). */
    groups: z.array(z.string().min(1)).default([]),
    /** Drop changes of accounts disabled in AD (userAccountControl ACCOUNTDISABLE). */
    dropDisabledAccounts: z.boolean().default(false),
    timeoutMs: duration(100, 120_000).default(10_000),
    /** While the directory cannot be asked, the scope check waits this long before asking again (the change stays queued). */
    retryDelayMs: duration(100, 600_000).default(5_000),
  }),
  /**
   * Samba AD DC: capture changes with `samba-tool user syncpasswords` (README "Samba AD
   * domain controllers"). Absent on Windows DCs.
   */
  samba: z
    .object({
      enabled: z.boolean().default(true),
      smbConf: z.string().min(1).default("/etc/samba/smb.conf"),
      sambaTool: z.string().min(1).default("samba-tool"),
      /** The agent's own keyring: the GPG key pair Samba encrypts new passwords to (0700, root). */
      gnupgHome: z.string().min(1).default("/var/lib/pwsync/gnupg"),
      /** The keyring Samba's writers use (public key only); checked by `dc-agent verify`. */
      dcGnupgHome: z.string().min(1).default("/root/.gnupg"),
      /** Where the syncpasswords hook reaches the agent (its directory is made 0700). */
      hookSocket: z.string().min(1).default("/run/pwsync/samba-hook.sock"),
      /** The hook syncpasswords runs: dc-agent/samba/pwsync-samba-hook.mjs (install.sh sets it). */
      hookScript: z.string().min(1),
      restartBackoff: z.object({ minMs: duration(100, 600_000).default(1_000), maxMs: duration(100, 3_600_000).default(60_000) }).prefault({}),
      /** ALARM when syncpasswords has not been running for this long. */
      alarmAfterMs: duration(100, 86_400_000).default(60_000),
      /** `dc-agent samba-bulk-sync` pace: half of Graph's 2,850 writes per 150 s (executor.rateLimit). */
      bulkPerMinute: z.number().int().min(1).max(100_000).default(560),
    })
    .optional(),
  alarms: z
    .object({
      /** Raise an alarm when the oldest queued change is older than this. */
      queueAgeMs: duration(1_000, 30 * 86_400_000).default(15 * 60_000),
      /** Raise an alarm when more changes than this are queued. */
      queueDepth: z.number().int().min(1).default(10_000),
      /** Raise an alarm when a file has waited in the filter's spool longer than this (the agent drains every scan). */
      spoolAgeMs: duration(1_000, 30 * 86_400_000).default(5 * 60_000),
      checkIntervalMs: duration(100, 3_600_000).default(30_000),
    })
    .prefault({}),
  queue: z
    .object({
      /** A segment file is closed and a new one started past this size. */
      segmentBytes: z
        .number()
        .int()
        .min(4096)
        .max(1 << 30)
        .default(8 * 1024 * 1024),
    })
    .prefault({}),
  /** The seed's log: JSON lines, to stdout or to a size-rotated file (Windows service). */
  log: z
    .object({
      file: z.string().min(1).optional(),
      maxBytes: z
        .number()
        .int()
        .min(64 * 1024)
        .default(10 * 1024 * 1024),
      keep: z.number().int().min(1).max(100).default(5),
      level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info"),
    })
    .prefault({}),
  /** OpenTelemetry: the agent starts each change's trace (off unless enabled). */
  telemetry: telemetrySection,
});

// Checked on the raw input: an object schema strips unknown keys before a refinement sees them.
export const agentConfigSchema = z.preprocess((raw, ctx) => {
  if (raw && typeof raw === "object" && "passwordResetRetryLimit" in raw) {
    ctx.addIssue({ code: "custom", path: ["passwordResetRetryLimit"], message: RETRY_LIMIT_MOVED, input: raw });
  }
  return raw;
}, agentConfigObject);

export type AgentConfig = z.infer<typeof agentConfigObject>;
