import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StringValue, StringValueSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { describe, expectTypeOf, it } from "vitest";
import type { BidiStreamingCall, Received, ServerStreamingCall, ServiceImpl } from "./implement.js";
import type { EchoService } from "./test-support/echo.js";
import type { CallOptions, Client } from "./typed-client.js";

// These assertions are checked by the compiler (CI's `tsc -p tsconfig.json` covers test files):
// a mapping that drifts fails the typecheck, not a runtime assertion.
type Echo = typeof EchoService;
type Init = MessageInitShape<typeof StringValueSchema>;

describe("Client<Desc>: each method typed from the descriptor by its kind", () => {
  it("unary: request init shape in, Promise of the response message out", () => {
    expectTypeOf<Client<Echo>["say"]>().toEqualTypeOf<(request: Init, options?: CallOptions) => Promise<StringValue>>();
  });

  it("server streaming: an AsyncIterable of response messages", () => {
    expectTypeOf<Client<Echo>["repeat"]>().toEqualTypeOf<(request: Init, options?: CallOptions) => AsyncIterable<StringValue>>();
  });

  it("bidi: a BidiStream sending request init shapes, yielding response messages", () => {
    expectTypeOf<Client<Echo>["chat"]>().parameters.toEqualTypeOf<[options?: CallOptions]>();
    type Chat = ReturnType<Client<Echo>["chat"]>;
    expectTypeOf<Chat["send"]>().toEqualTypeOf<(request: Init) => void>();
    expectTypeOf<Chat["closeSend"]>().toEqualTypeOf<() => void>();
    expectTypeOf<Chat["responses"]>().toEqualTypeOf<AsyncIterable<StringValue>>();
  });

  it("refuses methods the service does not have and requests of the wrong shape", () => {
    const client = {} as Client<Echo>;
    // Only compiled, never called: the point is that these lines do not type-check.
    const misuse = () => {
      // @ts-expect-error no such method
      void client.shout({ value: "x" });
      // @ts-expect-error StringValue has no field `text`
      void client.say({ text: "x" });
      // @ts-expect-error a bidi call takes no request up front
      void client.chat({ value: "x" });
    };
    expectTypeOf(misuse).toBeFunction();
  });
});

describe("ServiceImpl<Desc>: every method's handler typed by its kind", () => {
  type Impl = ServiceImpl<Echo>;

  it("unary: the request message and its call in, a Promise of the response (init shape) out", () => {
    expectTypeOf<Impl["say"]>().toEqualTypeOf<(request: StringValue, call: grpc.ServerUnaryCall<StringValue, StringValue>) => Promise<Init>>();
  });

  it("streaming handlers get grpc-js's call, whose requests may be malformed", () => {
    expectTypeOf<Impl["repeat"]>().toEqualTypeOf<(call: ServerStreamingCall<typeof StringValueSchema, typeof StringValueSchema>) => void>();
    expectTypeOf<Impl["chat"]>().toEqualTypeOf<(call: BidiStreamingCall<typeof StringValueSchema, typeof StringValueSchema>) => void>();
    expectTypeOf<Parameters<Impl["repeat"]>[0]["request"]>().toEqualTypeOf<Received<typeof StringValueSchema>>();
  });

  it("a missing handler or one for the wrong kind does not type-check", () => {
    const say = async (request: StringValue) => ({ value: request.value });
    // @ts-expect-error `chat` is missing
    const missing: Impl = { say, repeat: () => {} };
    // @ts-expect-error a unary handler where a server-streaming one belongs
    const wrongKind: Impl = { say, repeat: say, chat: () => {} };
    expectTypeOf(missing).toEqualTypeOf(wrongKind);
  });
});
