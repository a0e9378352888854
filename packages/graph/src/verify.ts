import { GRAPH_SCOPE, type GraphClient } from "./client.js";
import { classifyGraphError, type ClassifiedGraphError } from "./errors.js";

export type VerifyResult = { ok: true; tokenExpiresOn: Date } | { ok: false; stage: "token" | "read"; error: ClassifiedGraphError };

/**
 * The "Verify Credentials" button: obtains a token, then performs one cheap read
 * (a single user id) to prove the app can reach and read the directory.
 */
export async function verifyCredentials(client: GraphClient): Promise<VerifyResult> {
  let tokenExpiresOn: Date;
  try {
    const token = await client.credential.getToken(GRAPH_SCOPE);
    if (!token) throw Object.assign(new Error("no token returned"), { name: "AuthenticationError" });
    tokenExpiresOn = new Date(token.expiresOnTimestamp);
  } catch (err) {
    return { ok: false, stage: "token", error: classifyGraphError(err) };
  }
  try {
    await client.sdk.api("/users").select(["id"]).top(1).get();
  } catch (err) {
    return { ok: false, stage: "read", error: classifyGraphError(err) };
  }
  return { ok: true, tokenExpiresOn };
}
