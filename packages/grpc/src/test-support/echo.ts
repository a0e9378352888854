import { create, createFileRegistry } from "@bufbuild/protobuf";
import { type GenService, serviceDesc } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema, file_google_protobuf_wrappers, type StringValueSchema } from "@bufbuild/protobuf/wkt";

// A service with one method of each kind pwsync uses, built at runtime from well-known message
// types so the adapter's tests need no generated code of their own. Its type is what
// protoc-gen-es would have declared for the same .proto.
const ECHO_PROTO = "pwsync/test/echo.proto";
const string = ".google.protobuf.StringValue";

const file = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: ECHO_PROTO,
    package: "pwsync.test",
    syntax: "proto3",
    dependency: ["google/protobuf/wrappers.proto"],
    service: [
      {
        name: "EchoService",
        method: [
          { name: "Say", inputType: string, outputType: string },
          { name: "Repeat", inputType: string, outputType: string, serverStreaming: true },
          { name: "Chat", inputType: string, outputType: string, clientStreaming: true, serverStreaming: true },
        ],
      },
    ],
  }),
  (name) => (name === "google/protobuf/wrappers.proto" ? file_google_protobuf_wrappers : undefined),
).getFile(ECHO_PROTO)!;

export const EchoService: GenService<{
  say: { methodKind: "unary"; input: typeof StringValueSchema; output: typeof StringValueSchema };
  repeat: { methodKind: "server_streaming"; input: typeof StringValueSchema; output: typeof StringValueSchema };
  chat: { methodKind: "bidi_streaming"; input: typeof StringValueSchema; output: typeof StringValueSchema };
}> = serviceDesc(file, 0);
