import type { Migration, MigrationProvider } from "kysely";
import * as m0001 from "./0001_event_log.js";
import * as m0002 from "./0002_agent_status.js";
import * as m0003 from "./0003_partition_key_index.js";
import * as m0004 from "./0004_admin_views.js";
import * as m0005 from "./0005_executor_order_key.js";
import * as m0006 from "./0006_fencing.js";
import * as m0007 from "./0007_graph_write_budget.js";
import * as m0008 from "./0008_agent_spool.js";
import * as m0009 from "./0009_change_lifecycle_functions.js";
import * as m0010 from "./0010_history_projections.js";
import * as m0011 from "./0011_projection_owner_writes.js";

// Versioned migrations, applied in name order; a new one is a new file, never an edit.
const migrations: Record<string, Migration> = {
  "0001_event_log": m0001,
  "0002_agent_status": m0002,
  "0003_partition_key_index": m0003,
  "0004_admin_views": m0004,
  "0005_executor_order_key": m0005,
  "0006_fencing": m0006,
  "0007_graph_write_budget": m0007,
  "0008_agent_spool": m0008,
  "0009_change_lifecycle_functions": m0009,
  "0010_history_projections": m0010,
  "0011_projection_owner_writes": m0011,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
