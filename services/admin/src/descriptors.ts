import { create, type DescFile } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  type FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";

// Descriptors of the two standard gRPC services we serve but do not generate code for. Written
// out here (they are small and frozen by the gRPC project) so reflection can describe them and
// the dynamic test client can speak reflection without a .proto parser.

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
const optional = (name: string, number: number, type: Type, typeName?: string) => ({
  name,
  number,
  type,
  label: Label.OPTIONAL,
  jsonName: camel(name),
  ...(typeName ? { typeName } : {}),
});
const repeated = (name: string, number: number, type: Type, typeName?: string) => ({ ...optional(name, number, type, typeName), label: Label.REPEATED });
const inOneof = (field: ReturnType<typeof optional>, index: number) => ({ ...field, oneofIndex: index });

export const healthFileDescriptor: FileDescriptorProto = create(FileDescriptorProtoSchema, {
  name: "grpc/health/v1/health.proto",
  package: "grpc.health.v1",
  syntax: "proto3",
  messageType: [
    { name: "HealthCheckRequest", field: [optional("service", 1, Type.STRING)] },
    {
      name: "HealthCheckResponse",
      field: [optional("status", 1, Type.ENUM, ".grpc.health.v1.HealthCheckResponse.ServingStatus")],
      enumType: [
        {
          name: "ServingStatus",
          value: [
            { name: "UNKNOWN", number: 0 },
            { name: "SERVING", number: 1 },
            { name: "NOT_SERVING", number: 2 },
            { name: "SERVICE_UNKNOWN", number: 3 },
          ],
        },
      ],
    },
  ],
  service: [
    {
      name: "Health",
      method: [
        { name: "Check", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse" },
        { name: "Watch", inputType: ".grpc.health.v1.HealthCheckRequest", outputType: ".grpc.health.v1.HealthCheckResponse", serverStreaming: true },
      ],
    },
  ],
});

const R = ".grpc.reflection.v1.";

/** grpc/reflection/v1/reflection.proto, the parts a client needs (no extension queries). */
export const reflectionFileDescriptor: FileDescriptorProto = create(FileDescriptorProtoSchema, {
  name: "grpc/reflection/v1/reflection.proto",
  package: "grpc.reflection.v1",
  syntax: "proto3",
  messageType: [
    {
      name: "ServerReflectionRequest",
      field: [
        optional("host", 1, Type.STRING),
        inOneof(optional("file_by_filename", 3, Type.STRING), 0),
        inOneof(optional("file_containing_symbol", 4, Type.STRING), 0),
        inOneof(optional("list_services", 7, Type.STRING), 0),
      ],
      oneofDecl: [{ name: "message_request" }],
    },
    { name: "FileDescriptorResponse", field: [repeated("file_descriptor_proto", 1, Type.BYTES)] },
    { name: "ServiceResponse", field: [optional("name", 1, Type.STRING)] },
    { name: "ListServiceResponse", field: [repeated("service", 1, Type.MESSAGE, `${R}ServiceResponse`)] },
    { name: "ErrorResponse", field: [optional("error_code", 1, Type.INT32), optional("error_message", 2, Type.STRING)] },
    {
      name: "ServerReflectionResponse",
      field: [
        optional("valid_host", 1, Type.STRING),
        optional("original_request", 2, Type.MESSAGE, `${R}ServerReflectionRequest`),
        inOneof(optional("file_descriptor_response", 4, Type.MESSAGE, `${R}FileDescriptorResponse`), 0),
        inOneof(optional("list_services_response", 6, Type.MESSAGE, `${R}ListServiceResponse`), 0),
        inOneof(optional("error_response", 7, Type.MESSAGE, `${R}ErrorResponse`), 0),
      ],
      oneofDecl: [{ name: "message_response" }],
    },
  ],
  service: [
    {
      name: "ServerReflection",
      method: [
        {
          name: "ServerReflectionInfo",
          inputType: `${R}ServerReflectionRequest`,
          outputType: `${R}ServerReflectionResponse`,
          clientStreaming: true,
          serverStreaming: true,
        },
      ],
    },
  ],
});

/** A file and everything it imports, dependencies first. */
export function withDependencies(file: DescFile, out = new Map<string, FileDescriptorProto>()): Map<string, FileDescriptorProto> {
  for (const dep of file.dependencies) withDependencies(dep, out);
  out.set(file.proto.name, file.proto);
  return out;
}
