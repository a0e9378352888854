import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { seal, type RecipientPublicKey } from "@pwsync/crypto";
import { createClient, isServiceError, mtlsChannelCredentials, REFUSED_CHANGE_ID_KEY, type BidiStream } from "@pwsync/grpc/client";
import {
  AckStatus,
  AgentIngestService,
  PasswordChangeSchema,
  type PasswordChange,
  type StreamChangesRequestSchema,
  type StreamChangesResponseSchema,
} from "@pwsync/proto";

export interface IngestEndpoint {
  address: string;
  caPem: string | Buffer;
  certPem: string | Buffer;
  keyPem: string | Buffer;
  /** TLS server name to verify when `address` is an IP the certificate does not name. */
  serverName?: string;
}

export interface Ack {
  changeId: string;
  /** refused: ingest recorded the change as refused for good (ChangeRefused); drop it, alarm. */
  status: "committed" | "duplicate" | "refused";
  globalPosition: bigint;
}

export class StreamClosedError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
    /** The change ingest ended the stream for, when it said which (REFUSED_CHANGE_ID_KEY). */
    readonly refusedChangeId?: string,
  ) {
    super(`ingest closed the stream: ${grpc.status[code]}: ${details}`);
  }
}

/**
 * One bidi stream to ingest with acks matched to changes by id. `send` resolves once ingest has
 * committed the change (or recognised it as already committed) and rejects with the stream's
 * status if the stream ends first; the caller keeps the change queued until it resolves.
 */
export class IngestStream {
  private readonly channel: grpc.Client;
  private readonly call: BidiStream<typeof StreamChangesRequestSchema, typeof StreamChangesResponseSchema>;
  private readonly waiting = new Map<string, { resolve(ack: Ack): void; reject(err: Error): void }>();
  private readonly finished: Promise<void>;
  private closedWith: Error | undefined;

  constructor(endpoint: IngestEndpoint, options: { deadlineMs?: number } = {}) {
    const channelOptions: grpc.ChannelOptions = endpoint.serverName ? { "grpc.ssl_target_name_override": endpoint.serverName } : {};
    this.channel = new grpc.Client(
      endpoint.address,
      mtlsChannelCredentials({ ca: endpoint.caPem, cert: endpoint.certPem, key: endpoint.keyPem }),
      channelOptions,
    );
    this.call = createClient(AgentIngestService, this.channel).streamChanges(options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {});
    this.finished = this.readAcks();
  }

  private async readAcks(): Promise<void> {
    try {
      for await (const response of this.call.responses) {
        const waiter = this.waiting.get(response.changeId);
        if (!waiter) continue;
        this.waiting.delete(response.changeId);
        waiter.resolve({
          changeId: response.changeId,
          status: response.status === AckStatus.DUPLICATE ? "duplicate" : response.status === AckStatus.REFUSED ? "refused" : "committed",
          globalPosition: response.globalPosition,
        });
      }
      this.fail(new StreamClosedError(grpc.status.UNAVAILABLE, "stream ended"));
    } catch (err) {
      if (!isServiceError(err)) return this.fail(new StreamClosedError(grpc.status.UNKNOWN, (err as Error).message));
      const refused = err.metadata?.get(REFUSED_CHANGE_ID_KEY)[0];
      this.fail(new StreamClosedError(err.code, err.details, typeof refused === "string" ? refused : undefined));
    }
  }

  private fail(err: Error): void {
    this.closedWith ??= err;
    for (const waiter of this.waiting.values()) waiter.reject(this.closedWith);
    this.waiting.clear();
  }

  send(change: PasswordChange): Promise<Ack> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<Ack>((resolve, reject) => {
      this.waiting.set(change.changeId, { resolve, reject });
      this.call.send({ change });
    });
  }

  /** Half-closes the stream and waits for the server to finish it. */
  async close(): Promise<void> {
    if (!this.closedWith) {
      this.call.closeSend();
      await this.finished;
    }
    this.channel.close();
  }
}

export interface CapturedChange {
  changeId: string;
  accountName: string;
  userPrincipalName?: string;
  mail?: string;
  objectGuid?: Uint8Array;
  changedAt: Date;
  domainController: string;
  agentSequence?: bigint;
  /** When the capture source saw the change; orders one user's changes (newest wins). */
  capturedAt?: Timestamp;
  captureSequence?: bigint;
  traceparent?: string;
}

/** Seals the password for the reset-executor and builds the wire message; zero `password` after. */
export function buildPasswordChange(recipient: RecipientPublicKey, captured: CapturedChange, password: Uint8Array): PasswordChange {
  return create(PasswordChangeSchema, {
    changeId: captured.changeId,
    accountName: captured.accountName,
    userPrincipalName: captured.userPrincipalName ?? "",
    mail: captured.mail ?? "",
    objectGuid: captured.objectGuid ?? new Uint8Array(),
    changedAt: timestampFromDate(captured.changedAt),
    sealedPassword: seal(recipient, captured.changeId, password),
    domainController: captured.domainController,
    agentSequence: captured.agentSequence ?? 0n,
    traceparent: captured.traceparent ?? "",
    ...(captured.capturedAt ? { capturedAt: captured.capturedAt } : {}),
    captureSequence: captured.captureSequence ?? 0n,
  });
}
