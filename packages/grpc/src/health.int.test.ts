import * as grpc from "@grpc/grpc-js";
import { service as reference } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addHealthService, HEALTH_LIST_LIMIT, HealthStatuses } from "./health.js";

// A real grpc-js server with our health service, called through the method definitions of gRPC's
// own grpc-health-check package (protobufjs on its health.proto): an independent reading of the
// contract, so what probes and grpc_health_probe see is checked, not our own encoding of it.
let server: grpc.Server;
let client: grpc.Client;
const health = new HealthStatuses({ "": "NOT_SERVING", "pwsync.test": "SERVING" });

beforeAll(async () => {
  server = new grpc.Server();
  addHealthService(server, health);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});

afterAll(() => {
  client.close();
  server.forceShutdown();
});

function unary(method: "Check" | "List", request: object): Promise<unknown> {
  const { path, requestSerialize, responseDeserialize } = reference[method]!;
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(path, requestSerialize, responseDeserialize, request, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

describe("grpc.health.v1.Health", () => {
  it("Check answers each known service's status, NOT_FOUND for an unknown one", async () => {
    expect(await unary("Check", { service: "" })).toEqual({ status: "NOT_SERVING" });
    expect(await unary("Check", { service: "pwsync.test" })).toEqual({ status: "SERVING" });
    await expect(unary("Check", { service: "pwsync.nobody" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("Watch streams the current status, then each change, until the caller cancels", async () => {
    const { path, requestSerialize, responseDeserialize } = reference.Watch!;
    const stream = client.makeServerStreamRequest(path, requestSerialize, responseDeserialize, { service: "pwsync.watched" });
    stream.on("error", () => {});
    const heard: unknown[] = [];
    const twoHeard = new Promise<void>((resolve) =>
      stream.on("data", (message) => {
        heard.push(message);
        if (heard.length === 1) health.setStatus("pwsync.watched", "SERVING");
        if (heard.length === 2) resolve();
      }),
    );
    await twoHeard;
    expect(heard).toEqual([{ status: "SERVICE_UNKNOWN" }, { status: "SERVING" }]);
    stream.cancel();
  });

  it("List answers every service with its status", async () => {
    expect(await unary("List", {})).toEqual({
      statuses: { "": { status: "NOT_SERVING" }, "pwsync.test": { status: "SERVING" }, "pwsync.watched": { status: "SERVING" } },
    });
  });

  it("List refuses with RESOURCE_EXHAUSTED beyond its limit", async () => {
    for (let i = 0; i <= HEALTH_LIST_LIMIT; i++) health.setStatus(`pwsync.many${i}`, "SERVING");
    await expect(unary("List", {})).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
  });
});
