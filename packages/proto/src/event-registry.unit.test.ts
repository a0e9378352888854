import { describe, expect, it } from "vitest";
import { decodeRegistered, newEvent, type RegisteredEvent } from "./event-registry.js";
import { ResetFailureReason, ResolutionFailureReason } from "./gen/pwsync/v1/events_pb.js";

const changeId = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

/** What a consumer does with the union: switch on the type, read the payload it narrows to. */
function reasonOf(event: RegisteredEvent<"ResetFailed" | "ResolutionFailed">): string {
  switch (event.type) {
    case "ResetFailed":
      return `reset: ${ResetFailureReason[event.payload.reason]}`;
    case "ResolutionFailed":
      return `resolution: ${ResolutionFailureReason[event.payload.reason]}`;
  }
}

describe("the registered event union", () => {
  it("decodes a stored payload into the variant of its type", () => {
    const stored = newEvent("ResetFailed", { changeId, reason: ResetFailureReason.COMPLEXITY, attempts: 2 });
    const decoded = decodeRegistered(stored.type, stored.data);
    expect(decoded.type).toBe("ResetFailed");
    expect(decoded.payload).toMatchObject({ changeId, reason: ResetFailureReason.COMPLEXITY, attempts: 2 });
    expect(reasonOf(decoded)).toBe("reset: COMPLEXITY");
  });

  it("keeps reading an event written by a newer version with fields this one does not know", () => {
    const stored = newEvent("ResolutionFailed", { changeId, reason: ResolutionFailureReason.NOT_FOUND });
    const decoded = decodeRegistered("ResolutionFailed", { ...(stored.data as object), fieldFromTheFuture: 1 });
    expect(reasonOf(decoded)).toBe("resolution: NOT_FOUND");
  });
});
