import { startStack, stopOnAnyExit } from "@pwsync/devstack";

// A launcher wired as scripts/start.ts is (startStack, then stopOnAnyExit), which then hits an
// error nobody catches — what the demo's "Cannot access 'target' before initialization" was.
const stack = await startStack({ dataDir: process.argv[2]!, ports: "random", progress: (m) => process.stdout.write(`[crashing] ${m}\n`) });
stopOnAnyExit(
  () => stack.stop(),
  (m) => process.stdout.write(`[crashing] ${m}\n`),
);
process.stdout.write(`[crashing] ready. ingest ${stack.ingestAddress} admin ${stack.adminAddress}\n`);
setTimeout(() => {
  throw new Error("a bug in the launcher");
}, 500);
