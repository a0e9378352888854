import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SealedSecretSchema, type SealedSecret } from "@pwsync/proto";
import type { Sealed } from "./seal.js";

// The sealed_secrets table stores the SealedSecret protobuf bytes: one format on the wire and at rest.
export function toSealedSecret(sealed: Sealed): SealedSecret {
  return create(SealedSecretSchema, sealed);
}

export function fromSealedSecret(message: SealedSecret): Sealed {
  return {
    version: message.version,
    keyId: message.keyId,
    ephemeralPublicKey: message.ephemeralPublicKey,
    nonce: message.nonce,
    ciphertext: message.ciphertext,
    tag: message.tag,
  };
}

export function encodeEnvelope(message: SealedSecret): Uint8Array {
  return toBinary(SealedSecretSchema, message);
}

export function decodeEnvelope(bytes: Uint8Array): Sealed {
  return fromSealedSecret(fromBinary(SealedSecretSchema, bytes));
}
