// A consumer group member run as a separate process so a test can kill -9 it mid-event.
// On an event of type "Hang" it records that it began (outside any transaction, so the record
// survives the kill) and then never finishes; every other event is recorded as processed.
// Usage: node --import tsx hangingConsumer.ts <connectionString> <group>
import { sql } from "kysely";
import { openEventLog } from "../open.js";
import { startProcessor } from "../processor.js";

const [connectionString, group] = process.argv.slice(2);
if (!connectionString || !group) throw new Error("usage: hangingConsumer.ts <connectionString> <group>");

const log = await openEventLog(connectionString, { migrate: false, applicationName: "hanging-consumer" });
await startProcessor(log, {
  group,
  eventTypes: ["Plain", "Hang"],
  pollIntervalMs: 50,
  rebalanceIntervalMs: 200,
  memberId: `child-${process.pid}`,
  handle: async (event) => {
    if (event.type === "Hang") {
      await sql`INSERT INTO started_markers (global_position, pid) VALUES (${String(event.globalPosition)}, ${process.pid})`.execute(log.db);
      await new Promise<never>(() => {});
    }
    return async (trx) => {
      await sql`INSERT INTO processed (global_position, member_id, stream_id, stream_version)
                 VALUES (${String(event.globalPosition)}, ${`child-${process.pid}`}, ${event.streamId}, ${event.streamVersion})`.execute(trx);
    };
  },
});
