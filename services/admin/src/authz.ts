import * as grpc from "@grpc/grpc-js";
import { clientIdentity, GrpcError } from "@pwsync/grpc";
import { ADMIN_ROLE_URI_PREFIX } from "@pwsync/pki/names";
import type { DenialRecorder } from "./audit.js";

export interface AdminIdentity {
  /** Certificate common name. */
  name: string;
  roleUri: string;
}

type Call = { getAuthContext(): { sslPeerCertificate?: import("node:tls").PeerCertificate } | null | undefined; getPeer(): string };

/** URI SANs of the verified peer certificate (Node renders them as "URI:…, DNS:…"). */
function uriSans(call: Call): string[] {
  const san = call.getAuthContext()?.sslPeerCertificate?.subjectaltname ?? "";
  return san
    .split(/,\s*/)
    .filter((entry) => entry.startsWith("URI:"))
    .map((entry) => entry.slice(4));
}

/**
 * The admin identity of the caller, or a refusal: UNAUTHENTICATED without a valid certificate
 * from the configured CA, PERMISSION_DENIED for a valid certificate without the admin role
 * (an agent's). Every refusal is recorded.
 */
export async function requireAdmin(call: Call, method: string, denials: DenialRecorder): Promise<AdminIdentity> {
  const identity = clientIdentity(call);
  if (!identity) {
    await denials.record({ method, code: "UNAUTHENTICATED", subject: "", peer: call.getPeer(), detail: "no valid client certificate" });
    throw new GrpcError(grpc.status.UNAUTHENTICATED, "a client certificate issued by the pwsync CA is required for the admin API");
  }
  const roleUri = uriSans(call).find((uri) => uri.startsWith(ADMIN_ROLE_URI_PREFIX));
  if (!roleUri) {
    await denials.record({
      method,
      code: "PERMISSION_DENIED",
      subject: identity.commonName,
      peer: call.getPeer(),
      detail: "certificate has no admin role (URI SAN spiffe://pwsync/admin/…)",
    });
    throw new GrpcError(grpc.status.PERMISSION_DENIED, `certificate ${identity.commonName} does not carry the admin role`);
  }
  return { name: identity.commonName, roleUri };
}
