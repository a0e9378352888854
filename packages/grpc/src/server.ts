import * as grpc from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { addHealthService, HealthStatuses } from "./health.js";

export interface TlsFiles {
  /** CA that issues client (agent) certificates. */
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * Server credentials that request a client certificate but let the handshake finish without
 * one, so the call can be refused with a gRPC UNAUTHENTICATED status (and a log line) instead
 * of a bare TLS alert the agent would report as "unavailable". Node still verifies the chain
 * and validity against the CA; `requireClientIdentity` reads that verdict. Files are re-read
 * periodically, so renewed certificates are picked up without a restart.
 */
export function mtlsServerCredentials(files: TlsFiles, refreshIntervalMs = 60_000): grpc.ServerCredentials {
  const provider = new ReloadingCertificateProvider(files, refreshIntervalMs);
  return grpc.experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/**
 * Reads the files synchronously at start (grpc-js's own FileWatcherCertificateProvider loads
 * them asynchronously, and connections arriving before that are dropped), then re-reads them
 * periodically and hands changed certificates to grpc-js.
 */
class ReloadingCertificateProvider implements grpc.experimental.CertificateProvider {
  private ca: Buffer;
  private cert: Buffer;
  private key: Buffer;
  private readonly caListeners = new Set<CaListener>();
  private readonly identityListeners = new Set<IdentityListener>();

  constructor(
    private readonly files: TlsFiles,
    refreshIntervalMs: number,
  ) {
    this.ca = readFileSync(files.caFile);
    this.cert = readFileSync(files.certFile);
    this.key = readFileSync(files.keyFile);
    setInterval(() => this.reload(), refreshIntervalMs).unref();
  }

  private reload(): void {
    try {
      const ca = readFileSync(this.files.caFile);
      const cert = readFileSync(this.files.certFile);
      const key = readFileSync(this.files.keyFile);
      if (!ca.equals(this.ca)) {
        this.ca = ca;
        for (const l of this.caListeners) l({ caCertificate: ca });
      }
      if (!cert.equals(this.cert) || !key.equals(this.key)) {
        this.cert = cert;
        this.key = key;
        for (const l of this.identityListeners) l({ certificate: cert, privateKey: key });
      }
    } catch {
      // A renewal caught half-written keeps the previous certificates until the next read.
    }
  }

  addCaCertificateListener(listener: CaListener): void {
    this.caListeners.add(listener);
    // grpc-js registers its own watcher only after this call returns; deliver just after.
    queueMicrotask(() => listener({ caCertificate: this.ca }));
  }
  removeCaCertificateListener(listener: CaListener): void {
    this.caListeners.delete(listener);
  }
  addIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => listener({ certificate: this.cert, privateKey: this.key }));
  }
  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.identityListeners.delete(listener);
  }
}

export interface ClientIdentity {
  commonName: string;
  fingerprint256: string;
  validTo: string;
}

type CallWithAuth = { getAuthContext(): { sslPeerCertificate?: import("node:tls").PeerCertificate } | null | undefined };

/**
 * The verified client certificate's identity, or undefined when there is no certificate, it is
 * expired or not yet valid, or it was not issued by the configured CA (grpc-js only exposes a
 * peer certificate that Node's TLS layer authorized).
 */
export function clientIdentity(call: CallWithAuth): ClientIdentity | undefined {
  const peer = call.getAuthContext()?.sslPeerCertificate;
  if (!peer?.raw) return undefined;
  const cn = peer.subject?.CN;
  const commonName = Array.isArray(cn) ? cn[0] : cn;
  if (!commonName) return undefined;
  return { commonName, fingerprint256: peer.fingerprint256, validTo: peer.valid_to };
}

export const UNAUTHENTICATED_MESSAGE = "client certificate required: none was presented, or it is expired, not yet valid, or not issued by the pwsync agent CA";

export interface GrpcServerOptions {
  host: string;
  port: number;
  credentials: grpc.ServerCredentials;
  /** Largest request message accepted; bigger ones get RESOURCE_EXHAUSTED before any handler runs. */
  maxReceiveMessageBytes?: number;
  register(server: grpc.Server): void;
  /** Fully-qualified service names reported by the health service. */
  healthServiceNames: string[];
}

export interface RunningGrpcServer {
  readonly server: grpc.Server;
  readonly port: number;
  readonly health: HealthStatuses;
  setServing(serving: boolean): void;
  /** Graceful: stops accepting, lets in-flight calls finish for up to `graceMs`, then forces. */
  shutdown(graceMs?: number): Promise<void>;
}

export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningGrpcServer> {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 4 * 1024 * 1024,
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_permit_without_calls": 1,
  });
  const health = new HealthStatuses({ "": "NOT_SERVING" });
  addHealthService(server, health);
  options.register(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`, options.credentials, (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  const setServing = (serving: boolean) => {
    const status = serving ? "SERVING" : "NOT_SERVING";
    health.setStatus("", status);
    for (const name of options.healthServiceNames) health.setStatus(name, status);
  };
  return {
    server,
    port,
    health,
    setServing,
    shutdown: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        setServing(false);
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/**
 * A plaintext gRPC health endpoint for a worker service that serves no other RPCs (resolver,
 * executor, notifier): for Kubernetes probes and the launcher. Bind it to loopback or a pod IP.
 */
export async function insecureHealthServer(host: string, port: number, serviceName: string): Promise<RunningGrpcServer> {
  const running = await startGrpcServer({
    host,
    port,
    credentials: grpc.ServerCredentials.createInsecure(),
    healthServiceNames: [serviceName],
    register: () => {},
  });
  running.setServing(true);
  return running;
}
