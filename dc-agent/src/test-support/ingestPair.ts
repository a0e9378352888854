import { readFileSync } from "node:fs";
import { openEventLog, type EventLog } from "@pwsync/eventlog";
import { startIngest } from "@pwsync/ingest";
import type { Logger } from "@pwsync/log";
import type { DevPkiPaths } from "@pwsync/pki";
import { createTestDatabase, freePort } from "@pwsync/testkit";
import { sql } from "kysely";

type Running = Awaited<ReturnType<typeof startIngest>>;

/** Two real ingest servers (primary, secondary) on fixed ports over one event log; each can be stopped and started again. */
export async function startIngestPair(pki: DevPkiPaths, keyId: string, logger: Logger, scope: string[] = ["pwsync.test"]) {
  const log: EventLog = await openEventLog(await createTestDatabase("dcagent"));
  const ports = { primary: await freePort(), secondary: await freePort() };
  const running: Partial<Record<"primary" | "secondary", Running>> = {};
  const start = async (role: "primary" | "secondary") => {
    running[role] ??= await startIngest(
      {
        database: { url: log.connectionString },
        ingest: {
          host: "127.0.0.1",
          port: ports[role],
          tls: { caFile: pki.agentCa.cert, certFile: pki.server.cert, keyFile: pki.server.key },
          maxMessageBytes: 64 * 1024,
          acceptedKeyIds: [keyId],
          maxBatch: 128,
          agentScopes: Object.fromEntries(Object.keys(pki.agents).map((agent) => [agent, scope])),
        },
      },
      log,
      logger.child({ ingest: role }),
    );
  };
  const stop = async (role: "primary" | "secondary") => {
    await running[role]?.shutdown(0);
    delete running[role];
  };
  await start("primary");
  await start("secondary");
  return {
    log,
    ports,
    caPem: readFileSync(pki.ca.cert),
    start,
    stop,
    /** ChangeCaptured events in commit order. */
    async captured(): Promise<{ changeId: string; accountName: string; mail: string; position: bigint; traceparent: string }[]> {
      const r = await sql<{
        data: Record<string, string>;
        metadata: Record<string, string>;
        global_position: string;
      }>`SELECT data, metadata, global_position FROM events WHERE type = 'ChangeCaptured' ORDER BY global_position`.execute(log.db);
      return r.rows.map((row) => ({
        changeId: row.data.changeId!,
        accountName: row.data.accountName!,
        mail: row.data.mail ?? "",
        position: BigInt(row.global_position),
        traceparent: row.metadata.traceparent ?? "",
      }));
    },
    async close() {
      await stop("primary");
      await stop("secondary");
      await log.close();
    },
  };
}
