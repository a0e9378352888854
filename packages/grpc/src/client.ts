import * as grpc from "@grpc/grpc-js";

// The client half of @pwsync/grpc, importable on its own ("@pwsync/grpc/client"): the dc-agent
// is only a client, and its single-file Windows build must not pull in the server half.
export { toGrpcService } from "./adapter.js";
export { createClient, isServiceError, type BidiStream, type CallOptions, type Client } from "./typed-client.js";

/**
 * Trailing metadata key naming the change a refused StreamChanges call was ended for, so the
 * agent quarantines that one without reading the human-readable status text.
 */
export const REFUSED_CHANGE_ID_KEY = "pwsync-refused-change-id";

/** Channel credentials for an agent (or a test) presenting a client certificate. */
export function mtlsChannelCredentials(pem: { ca: string | Buffer; cert?: string | Buffer; key?: string | Buffer }): grpc.ChannelCredentials {
  const asBuffer = (value: string | Buffer | undefined) => (value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(value));
  return grpc.credentials.createSsl(asBuffer(pem.ca), asBuffer(pem.key), asBuffer(pem.cert));
}
