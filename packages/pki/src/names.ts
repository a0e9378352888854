// The names certificates carry and the services check, apart from the certificate code: the
// services import only these (`@pwsync/pki/names`), so they never load @peculiar/x509 and its
// dependencies (about 6 MB of memory each) just to compare a URI prefix.

/**
 * An agent is named by a URI SAN `spiffe://pwsync/agent/<dc>` where <dc> is the domain
 * controller it runs on: ingest takes the DC from here, never from the message, and a
 * certificate without it (an admin's, a workload's from a shared issuer) is not an agent.
 */
export const AGENT_URI_PREFIX = "spiffe://pwsync/agent/";

/** Names an agent may have: a DC host or DNS name, safe in a URI path and a file name. */
export const AGENT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function agentUri(domainController: string): string {
  if (!AGENT_NAME.test(domainController)) throw new Error(`invalid domain controller name for an agent certificate: ${JSON.stringify(domainController)}`);
  return `${AGENT_URI_PREFIX}${domainController.toLowerCase()}`;
}

/**
 * The admin role is a URI SAN in SPIFFE form, `spiffe://pwsync/admin/<name>`. Admin
 * certificates come from their own CA (the admin API trusts only it, ingest never does), and
 * the role is checked on top, so neither an agent nor an admin can pass as the other.
 */
export const ADMIN_ROLE_URI_PREFIX = "spiffe://pwsync/admin/";

export function adminRoleUri(name: string): string {
  return `${ADMIN_ROLE_URI_PREFIX}${encodeURIComponent(name)}`;
}

/**
 * A SHA-256 certificate fingerprint as Node prints it (uppercase hex pairs joined by colons),
 * from any common spelling (colons or not, any case); undefined when it is not one.
 */
export function normalizeFingerprint(input: string): string | undefined {
  const hex = input.replace(/[:\s]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)!.join(":");
}

/** The event stream of agent certificate revocations (AgentCertificateRevoked), read by ingest. */
export const AGENT_REVOCATIONS_STREAM = "agent-revocations";
