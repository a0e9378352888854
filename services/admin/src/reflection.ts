import { toBinary, type DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { healthFileDescriptor, withDependencies } from "./descriptors.js";

/**
 * Server reflection answered from the descriptors protobuf-es compiled into the generated code,
 * not from .proto files loaded again at run time: what reflection describes is exactly what the
 * server serializes, and no proto files need to ship with the service. @grpc/reflection only
 * reads `fileDescriptorProtos` (serialized FileDescriptorProto) from each entry of the package
 * definition it is given, so that is all this provides.
 */
export function addReflection(
  server: grpc.Server,
  files: DescFile[],
  authorize?: (call: grpc.ServerDuplexStream<unknown, unknown>, method: string) => Promise<void>,
): void {
  const all = new Map<string, FileDescriptorProto>();
  for (const file of files) withDependencies(file, all);
  all.set(healthFileDescriptor.name, healthFileDescriptor);
  const fileDescriptorProtos = [...all.values()].map((proto) => Buffer.from(toBinary(FileDescriptorProtoSchema, proto)));
  const packageDefinition = { pwsync: { fileDescriptorProtos } };
  // The API's description is for admins only: each reflection stream first passes the same
  // admin check as the RPCs (refused and audited otherwise), so a caller without an admin
  // certificate learns nothing but health. @grpc/reflection registers its services itself,
  // so its handlers are wrapped on the way in.
  const gated = authorize
    ? (new Proxy(server, {
        get(target, prop, receiver) {
          if (prop !== "addService") return Reflect.get(target, prop, receiver);
          return (definition: grpc.ServiceDefinition, handlers: grpc.UntypedServiceImplementation) => {
            const wrapped: grpc.UntypedServiceImplementation = {};
            for (const [name, handler] of Object.entries(handlers)) {
              const method = definition[name]?.path ?? name;
              wrapped[name] = ((call: grpc.ServerDuplexStream<unknown, unknown>) => {
                call.pause();
                authorize(call, method).then(
                  () => {
                    (handler as (c: typeof call) => void)(call);
                    call.resume();
                  },
                  (err: { code?: grpc.status; details?: string; message?: string }) =>
                    call.emit("error", { code: err.code ?? grpc.status.UNAUTHENTICATED, details: err.details ?? err.message }),
                );
              }) as grpc.UntypedHandleCall;
            }
            target.addService(definition, wrapped);
          };
        },
      }) as grpc.Server)
    : server;
  new ReflectionService(packageDefinition as never).addToServer(gated);
}
