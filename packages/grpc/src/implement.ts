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
import { GrpcError, isMalformed, type MalformedMessage, toServiceError } from "./adapter.js";

/** What a streaming handler reads: a request, or the marker for bytes that were not one. */
export type Received<I extends DescMessage> = MessageShape<I> | MalformedMessage;

export type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  call: grpc.ServerUnaryCall<MessageShape<I>, MessageShape<O>>,
) => Promise<MessageInitShape<O>>;

/** `call.request` may be malformed: the handler decides when to refuse it (after auth, say). */
export type ServerStreamingCall<I extends DescMessage, O extends DescMessage> = grpc.ServerWritableStream<Received<I>, MessageShape<O>>;
export type BidiStreamingCall<I extends DescMessage, O extends DescMessage> = grpc.ServerDuplexStream<Received<I>, MessageShape<O>>;

/** The handler a method needs, by its kind (pwsync has no client-streaming method: `never`). */
export type Handler<M extends DescMethod> =
  M extends DescMethodUnary<infer I, infer O>
    ? UnaryHandler<I, O>
    : M extends DescMethodServerStreaming<infer I, infer O>
      ? (call: ServerStreamingCall<I, O>) => void
      : M extends DescMethodBiDiStreaming<infer I, infer O>
        ? (call: BidiStreamingCall<I, O>) => void
        : never;

/** Every method of a generated service descriptor with its typed handler (connect-es's ServiceImpl). */
export type ServiceImpl<S extends DescService> = { [K in keyof S["method"]]: Handler<S["method"][K]> };

/**
 * A grpc-js implementation of `service`. Unary handlers are async functions returning the
 * response; a malformed request is answered INVALID_ARGUMENT before they run, and a thrown
 * GrpcError becomes its status (anything else INTERNAL, reported to `onError`). Streaming
 * handlers get grpc-js's call object, typed by the method.
 */
export function implement<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  onError: (err: unknown, method: string) => void = () => {},
): grpc.UntypedServiceImplementation {
  // The mapped type checked each handler against its method; here they are looked up by name
  // and kind, which TypeScript cannot follow from a runtime descriptor.
  const handlers = impl as Record<string, ((...args: never[]) => unknown) | undefined>;
  const grpcImpl: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const handler = handlers[method.localName];
    if (!handler) continue;
    grpcImpl[method.localName] =
      method.methodKind === "unary" ? unary(method, handler as UnaryHandler<DescMessage, DescMessage>, onError) : (handler as grpc.UntypedHandleCall);
  }
  return grpcImpl;
}

function unary(
  method: DescMethod,
  handler: UnaryHandler<DescMessage, DescMessage>,
  onError: (err: unknown, method: string) => void,
): grpc.handleUnaryCall<MessageShape<DescMessage> | MalformedMessage, MessageShape<DescMessage>> {
  return (call, callback) => {
    const request = call.request;
    if (isMalformed(request)) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: `malformed ${request.typeName}: ${request.reason}` });
      return;
    }
    handler(request, call as grpc.ServerUnaryCall<MessageShape<DescMessage>, MessageShape<DescMessage>>).then(
      (response) => callback(null, create(method.output, response)),
      (err: unknown) => {
        if (!(err instanceof GrpcError)) onError(err, method.name);
        callback(toServiceError(err));
      },
    );
  };
}
