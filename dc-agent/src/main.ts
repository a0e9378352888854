// dc-agent entry point.
//   dc-agent            run the agent (service mode)
//   dc-agent verify [--account NAME]   print a pass/fail table of every dependency; exit 1 on any failure
//   dc-agent samba-bulk-sync [--yes] [--per-minute N]   Samba DC: sync every account's current password once (audited)
//   dc-agent version    print the package version the agent was built from
// Configuration: one YAML file (PWSYNC_CONFIG) + PWSYNC_* environment overrides.
import { ConfigError, loadConfig } from "@pwsync/config";
import { createLogger, type Logger } from "@pwsync/log";
import { runService } from "@pwsync/service-runtime";
import { startTelemetry } from "@pwsync/telemetry";
import { startAgent } from "./agent.js";
import { agentConfigSchema, type AgentConfig } from "./config.js";
import { RotatingFile } from "./support/rotatingFile.js";
import { runBulkSync } from "./samba/bulkSync.js";
import { formatTable, runVerify } from "./verify/verify.js";
import { AGENT_VERSION } from "./version.js";

function load(): AgentConfig {
  try {
    return loadConfig(agentConfigSchema) as AgentConfig;
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pwsync dc-agent: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

// No top-level await: the Windows single executable runs this file as CommonJS (Node 22's SEA
// entry point must be CommonJS), and esbuild refuses top-level await there.
async function main(): Promise<void> {
  const [command = "run", ...args] = process.argv.slice(2);
  if (command === "version") {
    process.stdout.write(`${AGENT_VERSION}\n`);
    return;
  }
  const config = load();

  if (command === "verify") {
    const i = args.indexOf("--account");
    const results = await runVerify(config, i >= 0 && args[i + 1] !== undefined ? { account: args[i + 1]! } : {});
    process.stdout.write(formatTable(results));
    process.exit(results.every((r) => r.ok) ? 0 : 1);
  } else if (command === "samba-bulk-sync") {
    // The explicit, audited initial bulk sync on a Samba DC (dc-agent/README.md, "Samba AD domain controllers").
    const i = args.indexOf("--per-minute");
    const perMinute = i >= 0 ? Number(args[i + 1]) : undefined;
    process.exit(
      await runBulkSync(config, {
        yes: args.includes("--yes"),
        ...(perMinute && perMinute > 0 ? { perMinute } : {}),
        out: (line) => process.stdout.write(`${line}\n`),
      }),
    );
  } else if (command === "run") {
    const file = config.log.file ? new RotatingFile(config.log.file, config.log.maxBytes, config.log.keep) : undefined;
    const makeLogger = (o: { service: string }): Logger =>
      createLogger({ service: o.service, level: config.log.level, ...(file ? { destination: file } : {}) });
    await runService(
      "dc-agent",
      async (logger) => {
        // Fault injection for the crash test (dc-agent/src/agent.int.test.ts) only.
        const crash = process.env.DC_AGENT_FAULT === "kill-after-ingest-ack";
        const telemetry = await startTelemetry({ serviceName: "dc-agent", settings: config.telemetry });
        const agent = await startAgent(config, logger, crash ? { beforeRecordingAck: () => process.kill(process.pid, "SIGKILL") } : {});
        return async () => {
          await agent.stop();
          await telemetry.shutdown();
        };
      },
      makeLogger,
      {
        version: AGENT_VERSION,
        // Windows has no SIGTERM for a service's child: the service wrapper
        // (windows/service/) asks for a clean stop by closing our stdin.
        ...(process.env.PWSYNC_STOP_ON_STDIN_EOF === "1" ? { stopRequests: stopOnStdinEnd } : {}),
      },
    );
  } else {
    process.stderr.write(`usage: dc-agent [run] | dc-agent verify [--account NAME] | dc-agent samba-bulk-sync [--yes] [--per-minute N] | dc-agent version\n`);
    process.exit(2);
  }
}

function stopOnStdinEnd(requestStop: (reason: string) => void): void {
  process.stdin.on("data", () => {}); // the wrapper never writes; reading is what detects EOF
  process.stdin.on("end", () => requestStop("service stop"));
  process.stdin.on("error", () => requestStop("service stop"));
}

main().catch((err: unknown) => {
  process.stderr.write(`pwsync dc-agent: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
