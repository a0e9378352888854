export {
  createCa,
  issueServerCert,
  issueClientCert,
  issueAdminCert,
  issueAgentCert,
  agentUri,
  AGENT_URI_PREFIX,
  AGENT_NAME,
  adminRoleUri,
  ADMIN_ROLE_URI_PREFIX,
  createAppCredentialCert,
  normalizeFingerprint,
  AGENT_REVOCATIONS_STREAM,
  type CertAndKey,
  type KeyPurpose,
  type Validity,
} from "./certs.js";
export { ensureDevPki, type DevPkiOptions, type DevPkiPaths, type CertPaths } from "./dev-pki.js";
