import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { startHealthServer } from "./health.js";

describe("notifier health server", () => {
  it("closes within its grace period although a client holds a Watch stream open", async () => {
    const health = await startHealthServer("127.0.0.1", 0);
    health.setServing(true);
    // grpc.health.v1.Health/Watch, empty HealthCheckRequest: a server-streaming call that stays open.
    const client = new grpc.Client(`127.0.0.1:${health.port}`, grpc.credentials.createInsecure());
    // Bytes as they come: the test only needs to see that a status message arrived.
    const stream = client.makeServerStreamRequest(
      "/grpc.health.v1.Health/Watch",
      () => Buffer.alloc(0),
      (bytes: Buffer) => bytes,
      {},
    );
    const firstStatus = new Promise<Buffer>((resolve) => stream.once("data", resolve));
    stream.on("error", () => {});
    expect((await firstStatus).length).toBeGreaterThan(0);
    await expect(health.close(200)).resolves.toBeUndefined();
    client.close();
  });
});
