import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/**
 * What the server's deserializer yields for bytes that are not a valid message. grpc-js would
 * answer a throwing deserializer with INTERNAL; a malformed request is the caller's fault, so
 * handlers see this marker and answer INVALID_ARGUMENT (unary handlers get that for free from
 * `implement`).
 */
export class MalformedMessage {
  constructor(
    readonly typeName: string,
    readonly reason: string,
  ) {}
}

export function isMalformed(value: unknown): value is MalformedMessage {
  return value instanceof MalformedMessage;
}

export function methodDefinition(method: DescMethod): grpc.MethodDefinition<unknown, unknown> {
  const input = method.input as DescMessage;
  const output = method.output as DescMessage;
  return {
    path: `/${method.parent.typeName}/${method.name}`,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: (message: unknown) => Buffer.from(toBinary(input, message as MessageShape<DescMessage>)),
    requestDeserialize: (bytes: Buffer) => {
      try {
        return fromBinary(input, bytes);
      } catch (err) {
        return new MalformedMessage(input.typeName, (err as Error).message);
      }
    },
    responseSerialize: (message: unknown) => Buffer.from(toBinary(output, message as MessageShape<DescMessage>)),
    responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    originalName: method.localName,
  };
}

/** The one place protobuf-es service descriptors become grpc-js service definitions. */
export function toGrpcService(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) definition[method.localName] = methodDefinition(method);
  return definition as grpc.ServiceDefinition;
}

/** A gRPC error with a status code; anything else thrown by a handler becomes INTERNAL. */
export class GrpcError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Network and PostgreSQL connection failures (Node's codes, SQLSTATE class 08 and admin
 * shutdowns 57P0x): the service's dependency is unreachable for now, which a caller should
 * retry, not report as a server bug.
 */
const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EPIPE",
  "08000",
  "08001",
  "08003",
  "08006",
  "57P01",
  "57P02",
  "57P03",
]);

export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof GrpcError) return { code: err.code, details: err.message };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === "string" && UNREACHABLE_CODES.has(code)) {
    return { code: grpc.status.UNAVAILABLE, details: "a dependency of this service is unreachable for now; retry later (see server log)" };
  }
  // The underlying cause stays in the server log; callers only learn that it failed.
  return { code: grpc.status.INTERNAL, details: "internal error (see server log)" };
}
