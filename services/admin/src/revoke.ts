import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { appendToStream, readStream, type EventLog } from "@pwsync/eventlog";
import { GrpcError } from "@pwsync/grpc";
import { AGENT_REVOCATIONS_STREAM, normalizeFingerprint } from "@pwsync/pki/names";
import { decodeEvent, newEvent } from "@pwsync/proto";

export interface RevocationRecord {
  certificateFingerprint: string;
  revokedBy: string;
  reason: string;
  revokedAt: ReturnType<typeof timestampFromDate>;
}

/** Revocations so far, newest first. */
export async function listRevocations(log: EventLog): Promise<RevocationRecord[]> {
  const events = await readStream(log.db, AGENT_REVOCATIONS_STREAM);
  return events
    .filter((e) => e.type === "AgentCertificateRevoked")
    .map((e) => ({ ...decodeEvent("AgentCertificateRevoked", e.data), revokedAt: timestampFromDate(e.createdAt) }))
    .reverse();
}

/**
 * Appends AgentCertificateRevoked to the agent-revocations stream, which every ingest replica
 * re-reads every few seconds. Revoking twice records nothing new. The append expects the
 * version it read, so two admins revoking at once cannot both pass the "already revoked" check.
 */
export async function revokeAgentCertificate(
  log: EventLog,
  fingerprintInput: string,
  revokedBy: string,
  reason: string,
): Promise<{ certificateFingerprint: string; newlyRevoked: boolean }> {
  const certificateFingerprint = normalizeFingerprint(fingerprintInput);
  if (!certificateFingerprint)
    throw new GrpcError(
      grpc.status.INVALID_ARGUMENT,
      "certificate_fingerprint must be a SHA-256 fingerprint: 64 hex digits, colons optional (openssl x509 -noout -fingerprint -sha256)",
    );
  if (reason.length > 500) throw new GrpcError(grpc.status.INVALID_ARGUMENT, "reason is at most 500 characters");
  for (let attempt = 0; attempt < 5; attempt++) {
    const events = await readStream(log.db, AGENT_REVOCATIONS_STREAM);
    if (
      events.some(
        (e) =>
          e.type === "AgentCertificateRevoked" &&
          normalizeFingerprint(decodeEvent("AgentCertificateRevoked", e.data).certificateFingerprint) === certificateFingerprint,
      )
    )
      return { certificateFingerprint, newlyRevoked: false };
    const result = await appendToStream(
      log.db,
      AGENT_REVOCATIONS_STREAM,
      [{ ...newEvent("AgentCertificateRevoked", { certificateFingerprint, revokedBy, reason }), metadata: { actor: "admin" } }],
      { expectedVersion: events.length === 0 ? "no_stream" : events.length },
    );
    if (result.success) return { certificateFingerprint, newlyRevoked: true };
  }
  throw new GrpcError(grpc.status.ABORTED, "the revocation list kept changing; try again");
}
