export { createCa, issueServerCert, issueClientCert, createAppCredentialCert, type CertAndKey, type Validity } from "./certs.js";
export { ensureDevPki, type DevPkiOptions, type DevPkiPaths, type CertPaths } from "./dev-pki.js";
