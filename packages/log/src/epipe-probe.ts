import { createLogger } from "@pwsync/log";
import { runService } from "@pwsync/service-runtime";
await runService("probe", async (logger) => {
  setInterval(() => logger.info({ t: Date.now() }, "tick"), 20);
  return async () => { await new Promise(() => {}); };
}, createLogger);
