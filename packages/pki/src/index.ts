export { createCa, issueServerCert, issueClientCert, issueAdminCert, adminRoleUri, ADMIN_ROLE_URI_PREFIX, createAppCredentialCert, type CertAndKey, type Validity } from "./certs.js";
export { ensureDevPki, type DevPkiOptions, type DevPkiPaths, type CertPaths } from "./dev-pki.js";
