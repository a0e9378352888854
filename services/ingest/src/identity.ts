import type { PeerCertificate } from "node:tls";
import { ADMIN_ROLE_URI_PREFIX, AGENT_NAME, AGENT_URI_PREFIX } from "@pwsync/pki/names";

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

export interface AgentIdentity {
  /** The DC name from the URI SAN, lowercase: the agent id and the domain controller. */
  agentId: string;
  commonName: string;
  fingerprint256: string;
}

export type IdentityVerdict = { ok: true; agent: AgentIdentity } | { ok: false; subject: string; fingerprint256: string; detail: string };

/** URI SANs of a certificate as Node renders them ("URI:…, DNS:…"). */
export function uriSans(subjectaltname: string | undefined): string[] {
  return (subjectaltname ?? "")
    .split(/,\s*/)
    .filter((entry) => entry.startsWith("URI:"))
    .map((entry) => entry.slice(4));
}

/**
 * Whether a certificate the TLS layer already verified against the agent CA says it is an
 * agent: EKU clientAuth present (a certificate without any EKU is valid for every purpose to
 * OpenSSL, so absence is refused here), exactly one agent URI SAN naming a DC, and no admin
 * role. The chain check alone is not enough: a CA shared with other workloads, or a
 * mis-issued certificate, must not become an agent by accident.
 */
export function decideAgentIdentity(
  peer: Pick<PeerCertificate, "subject" | "subjectaltname" | "fingerprint256"> & { ext_key_usage?: string[] },
): IdentityVerdict {
  const cn = peer.subject?.CN;
  const commonName = (Array.isArray(cn) ? cn[0] : cn) ?? "";
  const refuse = (detail: string): IdentityVerdict => ({ ok: false, subject: commonName, fingerprint256: peer.fingerprint256, detail });
  if (!peer.ext_key_usage || peer.ext_key_usage.length === 0) return refuse("certificate has no extended key usage; an agent certificate carries clientAuth");
  if (!peer.ext_key_usage.includes(CLIENT_AUTH)) return refuse("certificate's extended key usage does not include clientAuth");
  const uris = uriSans(peer.subjectaltname);
  if (uris.some((uri) => uri.startsWith(ADMIN_ROLE_URI_PREFIX))) return refuse("an admin certificate is not an agent certificate");
  const agentUris = uris.filter((uri) => uri.startsWith(AGENT_URI_PREFIX));
  if (agentUris.length === 0) return refuse(`certificate has no agent URI SAN (${AGENT_URI_PREFIX}<dc>)`);
  if (agentUris.length > 1) return refuse("certificate names more than one agent");
  const name = agentUris[0]!.slice(AGENT_URI_PREFIX.length);
  if (!AGENT_NAME.test(name)) return refuse(`agent URI SAN names an invalid domain controller: ${JSON.stringify(name.slice(0, 80))}`);
  return { ok: true, agent: { agentId: name.toLowerCase(), commonName, fingerprint256: peer.fingerprint256 } };
}
