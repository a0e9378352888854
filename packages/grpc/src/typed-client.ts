import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodBiDiStreaming,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { methodDefinition } from "./adapter.js";
import { responsesOf } from "./responses.js";

export interface CallOptions {
  /** As grpc-js takes it: a Date, or milliseconds since the epoch. */
  deadline?: grpc.Deadline;
  metadata?: grpc.Metadata;
  /** Aborting cancels the call: a unary call rejects with CANCELLED, a stream just ends. */
  signal?: AbortSignal;
}

/**
 * One bidirectional call. Flow control is the caller's: it bounds how many requests it has
 * sent without an answer (the agent's window), and the server stops reading beyond its own
 * in-flight limit, so HTTP/2 holds back the rest.
 */
export interface BidiStream<I extends DescMessage, O extends DescMessage> {
  send(request: MessageInitShape<I>): void;
  /** No more requests; responses keep coming until the server ends the call. */
  closeSend(): void;
  /** Ends when the server ends the call with OK; throws its grpc.ServiceError otherwise. */
  readonly responses: AsyncIterable<MessageShape<O>>;
}

/**
 * A client whose methods and message types come from a generated service descriptor, after
 * connect-es's `Client<Desc>`: unary → Promise, server streaming → AsyncIterable, bidi →
 * BidiStream. pwsync's protos have no client-streaming method; one would show up here as
 * `never` until it is needed.
 */
export type Client<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethodUnary<infer I, infer O>
    ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
    : S["method"][K] extends DescMethodServerStreaming<infer I, infer O>
      ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
      : S["method"][K] extends DescMethodBiDiStreaming<infer I, infer O>
        ? (options?: CallOptions) => BidiStream<I, O>
        : never;
};

/**
 * The typed face of `channel` for one service. The channel (a plain grpc.Client: address,
 * credentials, channel options) stays the caller's to close, so several services can share it.
 */
export function createClient<S extends DescService>(service: S, channel: grpc.Client): Client<S> {
  const client: Record<string, unknown> = {};
  for (const method of service.methods) client[method.localName] = callerFor(method, channel);
  // Each entry was built for its own method kind just above; the mapped type names them.
  return client as Client<S>;
}

type AnyMessage = MessageShape<DescMessage>;

function callerFor(method: DescMethod, channel: grpc.Client) {
  const { path, requestSerialize, responseDeserialize } = methodDefinition(method);
  const deserialize = responseDeserialize as (bytes: Buffer) => AnyMessage;
  const prepare = (options: CallOptions = {}) => ({
    metadata: options.metadata ?? new grpc.Metadata(),
    callOptions: options.deadline === undefined ? {} : { deadline: options.deadline },
  });
  switch (method.methodKind) {
    case "unary":
      return (request: MessageInitShape<DescMessage>, options: CallOptions = {}) =>
        new Promise<AnyMessage>((resolve, reject) => {
          const { metadata, callOptions } = prepare(options);
          const call = channel.makeUnaryRequest(path, requestSerialize, deserialize, create(method.input, request), metadata, callOptions, (err, response) => {
            stopListening();
            if (err) reject(err);
            else resolve(response!);
          });
          const stopListening = onAbort(options.signal, () => call.cancel());
        });
    case "server_streaming":
      return (request: MessageInitShape<DescMessage>, options: CallOptions = {}) => {
        const { metadata, callOptions } = prepare(options);
        const call = channel.makeServerStreamRequest(path, requestSerialize, deserialize, create(method.input, request), metadata, callOptions);
        const signal = options.signal;
        call.on(
          "status",
          onAbort(signal, () => call.cancel()),
        );
        return responsesOf(call, () => signal?.aborted === true);
      };
    case "bidi_streaming":
      return (options: CallOptions = {}): BidiStream<DescMessage, DescMessage> => {
        const { metadata, callOptions } = prepare(options);
        const call = channel.makeBidiStreamRequest(path, requestSerialize, deserialize, metadata, callOptions);
        const signal = options.signal;
        call.on(
          "status",
          onAbort(signal, () => call.cancel()),
        );
        return {
          send: (request) => call.write(create(method.input, request)),
          closeSend: () => call.end(),
          responses: responsesOf(call, () => signal?.aborted === true),
        };
      };
    case "client_streaming":
      return () => {
        throw new Error(`${method.parent.typeName}.${method.name}: client streaming is not supported by @pwsync/grpc`);
      };
  }
}

/** Runs `cancel` when `signal` aborts (at once if it already has); returns the unsubscribe. */
function onAbort(signal: AbortSignal | undefined, cancel: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    cancel();
    return () => {};
  }
  signal.addEventListener("abort", cancel, { once: true });
  return () => signal.removeEventListener("abort", cancel);
}

/** A failed call's status as grpc-js reports it (code, details, trailing metadata). */
export function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === "number" && "details" in err;
}
