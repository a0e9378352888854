// Preloaded before every service (node --import): FILE__<NAME>=/path sets the environment
// variable <NAME> to that file's content, so secrets arrive as mounted files (compose secrets,
// Kubernetes Secret volumes) and never as literals in a manifest or an image.
//   FILE__PWSYNC_GRAPH__CLIENT_SECRET=/run/secrets/graph-client-secret → graph.clientSecret
//   FILE__PWSYNC_DATABASE__URL=/run/secrets/database-url               → database.url
//   FILE__SANDBOX_CLIENT_SECRET=/run/pwsync/sandbox/client-secret      → the sandbox's app secret
// A dedicated prefix rather than a _FILE suffix: pwsync's own keys end in "File" (tls.caFile is
// PWSYNC_INGEST__TLS__CA_FILE), and a suffix rule would read those.
import { readFileSync } from "node:fs";

const PREFIX = "FILE__";
for (const [name, file] of Object.entries(process.env)) {
  if (!name.startsWith(PREFIX) || !file) continue;
  const target = name.slice(PREFIX.length);
  try {
    process.env[target] = readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    process.stderr.write(`pwsync: ${name} points at ${file}, which cannot be read (${err.code ?? err.message})\n`);
    process.exit(2);
  }
  delete process.env[name];
}
