import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { healthFileDescriptor, withDependencies } from "./descriptors.js";

/**
 * Server reflection answered from the descriptors protobuf-es compiled into the generated code,
 * not from .proto files loaded again at run time: what reflection describes is exactly what the
 * server serializes, and no proto files need to ship with the service. @grpc/reflection only
 * reads `fileDescriptorProtos` (serialized FileDescriptorProto) from each entry of the package
 * definition it is given, so that is all this provides.
 */
export function addReflection(server: grpc.Server, files: DescFile[]): void {
  const all = new Map<string, FileDescriptorProto>();
  for (const file of files) withDependencies(file, all);
  all.set(healthFileDescriptor.name, healthFileDescriptor);
  const fileDescriptorProtos = [...all.values()].map((proto) => Buffer.from(toBinary(FileDescriptorProtoSchema, proto)));
  const packageDefinition = { pwsync: { fileDescriptorProtos } };
  new ReflectionService(packageDefinition as never).addToServer(server);
}
