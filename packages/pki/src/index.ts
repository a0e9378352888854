export {
  createCa,
  issueServerCert,
  issueClientCert,
  issueAdminCert,
  issueAgentCert,
  createAppCredentialCert,
  type CertAndKey,
  type KeyPurpose,
  type Validity,
} from "./certs.js";
export { ensureDevPki, type DevPkiOptions, type DevPkiPaths, type CertPaths } from "./dev-pki.js";
export { agentUri, AGENT_URI_PREFIX, AGENT_NAME, adminRoleUri, ADMIN_ROLE_URI_PREFIX, normalizeFingerprint, AGENT_REVOCATIONS_STREAM } from "./names.js";
