import { create } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcError, isMalformed, toGrpcService } from "./adapter.js";
import { implement } from "./implement.js";
import { EchoService } from "./test-support/echo.js";
import { createClient, isServiceError } from "./typed-client.js";

// One real grpc-js server on loopback, called through the typed client: every method kind, its
// errors with trailing metadata, and cancellation. The services' own tests do the same over mTLS.
const REFUSED_KEY = "test-refused";
let server: grpc.Server;
let channel: grpc.Client;
let echo: ReturnType<typeof createClient<typeof EchoService>>;
const serverSawCancel: string[] = [];

beforeAll(async () => {
  server = new grpc.Server();
  server.addService(
    toGrpcService(EchoService),
    implement(EchoService, {
      say: async (request) => {
        if (request.value === "") throw new GrpcError(grpc.status.INVALID_ARGUMENT, "say something");
        return { value: `${request.value}!` };
      },
      repeat: (call) => {
        const request = call.request;
        if (isMalformed(request)) return call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: request.reason });
        const [word, times, then] = request.value.split(" ");
        for (let i = 0; i < Number(times); i++) call.write(create(StringValueSchema, { value: `${word}${i}` }));
        if (then === "fail") call.emit("error", { code: grpc.status.UNAVAILABLE, details: "gone after the last one" });
        else if (then === "forever") call.on("cancelled", () => serverSawCancel.push(request.value));
        else call.end();
      },
      chat: (call) => {
        call.on("data", (request) => {
          if (isMalformed(request)) return;
          if (request.value === "boom") {
            const trailers = new grpc.Metadata();
            trailers.set(REFUSED_KEY, "boom");
            call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: "refused boom", metadata: trailers });
          } else call.write(create(StringValueSchema, { value: request.value.toUpperCase() }));
        });
        call.on("end", () => call.end());
      },
    }),
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
  );
  channel = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  echo = createClient(EchoService, channel);
});

afterAll(() => {
  channel?.close();
  server?.forceShutdown();
});

async function collect<T>(responses: AsyncIterable<T>): Promise<T[]> {
  const seen: T[] = [];
  for await (const message of responses) seen.push(message);
  return seen;
}

async function failureOf(work: Promise<unknown>): Promise<grpc.ServiceError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isServiceError(err)) throw new Error(`expected a gRPC status, got ${String(err)}`);
  return err;
}

describe("unary", () => {
  it("answers with the response message", async () => {
    expect((await echo.say({ value: "hi" })).value).toBe("hi!");
  });

  it("rejects with the handler's status", async () => {
    const err = await failureOf(echo.say({ value: "" }));
    expect([grpc.status[err.code], err.details]).toEqual(["INVALID_ARGUMENT", "say something"]);
  });

  it("an aborted signal cancels the call", async () => {
    const stop = new AbortController();
    stop.abort();
    expect(grpc.status[(await failureOf(echo.say({ value: "hi" }, { signal: stop.signal }))).code]).toBe("CANCELLED");
  });
});

describe("server streaming", () => {
  it("yields every message in order, then ends", async () => {
    expect((await collect(echo.repeat({ value: "a 3" }))).map((m) => m.value)).toEqual(["a0", "a1", "a2"]);
  });

  it("yields what arrived before a failure, then throws its status", async () => {
    const seen: string[] = [];
    const err = await failureOf(
      (async () => {
        for await (const m of echo.repeat({ value: "b 2 fail" })) seen.push(m.value);
      })(),
    );
    expect(seen).toEqual(["b0", "b1"]);
    expect([grpc.status[err.code], err.details]).toEqual(["UNAVAILABLE", "gone after the last one"]);
  });

  it("aborting ends the iteration quietly and cancels the call at the server", async () => {
    const stop = new AbortController();
    const seen: string[] = [];
    for await (const m of echo.repeat({ value: "c 1 forever" }, { signal: stop.signal })) {
      seen.push(m.value);
      stop.abort();
    }
    expect(seen).toEqual(["c0"]);
    await expect.poll(() => serverSawCancel, { timeout: 30_000 }).toContain("c 1 forever");
  });

  it("leaving the loop early cancels the call at the server", async () => {
    for await (const _ of echo.repeat({ value: "d 1 forever" })) break;
    await expect.poll(() => serverSawCancel, { timeout: 30_000 }).toContain("d 1 forever");
  });
});

describe("bidi streaming", () => {
  it("answers each request; closing the send side lets the server end the call", async () => {
    const chat = echo.chat();
    chat.send({ value: "one" });
    chat.send(create(StringValueSchema, { value: "two" }));
    chat.closeSend();
    expect((await collect(chat.responses)).map((m) => m.value)).toEqual(["ONE", "TWO"]);
  });

  it("a refusal arrives after the answers before it, with its trailing metadata", async () => {
    const chat = echo.chat();
    chat.send({ value: "fine" });
    chat.send({ value: "boom" });
    const seen: string[] = [];
    const err = await failureOf(
      (async () => {
        for await (const m of chat.responses) seen.push(m.value);
      })(),
    );
    expect(seen).toEqual(["FINE"]);
    expect([grpc.status[err.code], err.details, err.metadata.get(REFUSED_KEY)]).toEqual(["INVALID_ARGUMENT", "refused boom", ["boom"]]);
  });
});
