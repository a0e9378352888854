import { readFile } from "node:fs/promises";
import type { GraphSection } from "@pwsync/config";
import { createGraphClient, type GraphClient } from "./client.js";

/** A Graph client from the shared `graph` configuration section. */
export async function graphClientFromConfig(graph: GraphSection): Promise<GraphClient> {
  return createGraphClient({
    tenantId: graph.tenantId,
    clientId: graph.clientId,
    ...(graph.clientSecret !== undefined ? { clientSecret: graph.clientSecret } : {}),
    ...(graph.certificatePath !== undefined ? { certificatePath: graph.certificatePath } : {}),
    authorityHost: graph.authorityHost,
    graphBaseUrl: graph.baseUrl,
    ...(graph.caFile ? { caPem: await readFile(graph.caFile, "utf8") } : {}),
  });
}
