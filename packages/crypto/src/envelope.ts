import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { SealedSecretSchema, type SealedSecret } from "@pwsync/proto";

// The sealed_secrets table stores the SealedSecret protobuf bytes: one format on the wire and at rest.
export function encodeEnvelope(message: SealedSecret): Uint8Array {
  return toBinary(SealedSecretSchema, message);
}

export function decodeEnvelope(bytes: Uint8Array): SealedSecret {
  return fromBinary(SealedSecretSchema, bytes);
}
