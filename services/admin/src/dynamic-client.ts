import {
  create,
  createFileRegistry,
  fromBinary,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type DescService,
  type FileRegistry,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { reflectionFileDescriptor } from "./descriptors.js";

// What grpcurl does, in TypeScript: knows no service in advance; lists services and fetches
// their file descriptors over server reflection, then builds requests from JSON and prints
// responses as JSON. Used by the tests to prove reflection is complete enough for grpcurl.

const reflection = createFileRegistry(create(FileDescriptorSetSchema, { file: [reflectionFileDescriptor] }));
const ReflectionRequest = reflection.getMessage("grpc.reflection.v1.ServerReflectionRequest")!;
const ReflectionResponse = reflection.getMessage("grpc.reflection.v1.ServerReflectionResponse")!;
const REFLECTION_PATH = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";

const serializer = (desc: DescMessage) => (message: MessageShape<DescMessage>) => Buffer.from(toBinary(desc, message));
const deserializer = (desc: DescMessage) => (bytes: Buffer) => fromBinary(desc, bytes);

type ReflectionQuery = { case: "listServices" | "fileContainingSymbol" | "fileByFilename"; value: string };

export class DynamicClient {
  private readonly client: grpc.Client;
  private registry: FileRegistry | undefined;
  private readonly files = new Map<string, FileDescriptorProto>();

  constructor(address: string, credentials: grpc.ChannelCredentials) {
    this.client = new grpc.Client(address, credentials);
  }

  close(): void {
    this.client.close();
  }

  private ask(query: ReflectionQuery): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const call = this.client.makeBidiStreamRequest(REFLECTION_PATH, serializer(ReflectionRequest), deserializer(ReflectionResponse));
      call.on("data", (response: MessageShape<DescMessage>) => {
        call.end();
        const json = toJson(ReflectionResponse, response) as Record<string, unknown>;
        if (json.errorResponse) reject(new Error(`reflection error: ${JSON.stringify(json.errorResponse)}`));
        else resolve(json);
      });
      call.on("error", reject);
      call.write(create(ReflectionRequest, { messageRequest: query }));
    });
  }

  /** `grpcurl list` */
  async listServices(): Promise<string[]> {
    const response = await this.ask({ case: "listServices", value: "*" });
    return ((response.listServicesResponse as { service?: Array<{ name: string }> }).service ?? []).map((s) => s.name);
  }

  private async addFiles(response: Record<string, unknown>): Promise<void> {
    const encoded = (response.fileDescriptorResponse as { fileDescriptorProto?: string[] }).fileDescriptorProto ?? [];
    for (const base64 of encoded) {
      const file = fromBinary(FileDescriptorProtoSchema, Buffer.from(base64, "base64"));
      this.files.set(file.name, file);
    }
    // Fetch any import the server did not send along, by file name.
    for (const file of [...this.files.values()])
      for (const dep of file.dependency) if (!this.files.has(dep)) await this.addFiles(await this.ask({ case: "fileByFilename", value: dep }));
  }

  private dependenciesFirst(): FileDescriptorProto[] {
    const ordered = new Map<string, FileDescriptorProto>();
    const visit = (file: FileDescriptorProto) => {
      if (ordered.has(file.name)) return;
      for (const dep of file.dependency) visit(this.files.get(dep)!);
      ordered.set(file.name, file);
    };
    for (const file of this.files.values()) visit(file);
    return [...ordered.values()];
  }

  /** `grpcurl describe <service>`: fetches the descriptors containing the symbol. */
  async describe(serviceName: string): Promise<DescService> {
    await this.addFiles(await this.ask({ case: "fileContainingSymbol", value: serviceName }));
    this.registry = createFileRegistry(create(FileDescriptorSetSchema, { file: this.dependenciesFirst() }));
    const service = this.registry.getService(serviceName);
    if (!service) throw new Error(`service ${serviceName} not found in the descriptors the server sent`);
    return service;
  }

  private async method(fullMethod: string) {
    const [serviceName, methodName] = fullMethod.split("/") as [string, string];
    const service = this.registry?.getService(serviceName) ?? (await this.describe(serviceName));
    const method = service.methods.find((m) => m.name === methodName);
    if (!method) throw new Error(`no method ${methodName} in ${serviceName}`);
    return { path: `/${serviceName}/${methodName}`, method };
  }

  /** `grpcurl -d '<json>' host pkg.Service/Method` for a unary method. */
  async call(fullMethod: string, json: JsonValue = {}): Promise<JsonValue> {
    const { path, method } = await this.method(fullMethod);
    const request = fromJson(method.input, json);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(path, serializer(method.input), deserializer(method.output), request, (err, response) =>
        err ? reject(err) : resolve(toJson(method.output, response!, { alwaysEmitImplicit: true })),
      );
    });
  }

  /** A server-streaming call; resolves with the first `count` messages, then cancels. */
  async stream(fullMethod: string, json: JsonValue, count: number, onOpen?: () => void | Promise<void>): Promise<JsonValue[]> {
    const { path, method } = await this.method(fullMethod);
    const call = this.client.makeServerStreamRequest(path, serializer(method.input), deserializer(method.output), fromJson(method.input, json));
    const received: JsonValue[] = [];
    return new Promise((resolve, reject) => {
      call.on("data", (message: MessageShape<DescMessage>) => {
        received.push(toJson(method.output, message));
        if (received.length === count) {
          call.cancel();
          resolve(received);
        }
      });
      call.on("error", (err: grpc.ServiceError) => (err.code === grpc.status.CANCELLED ? resolve(received) : reject(err)));
      call.on("metadata", () => void onOpen?.());
    });
  }
}
