import { describe, expect, it } from "vitest";
import { changeIdOfStream, changeStreamId } from "./streams.js";

describe("change stream names", () => {
  it("name a change's stream after its id, lowercased as ingest stores ids", () => {
    expect(changeStreamId("3F2504E0-4F89-41D3-9A0C-0305E82C3301")).toBe("change-3f2504e0-4f89-41d3-9a0c-0305e82c3301");
  });

  it("give back the change id of a change stream, and nothing for other streams", () => {
    expect(changeIdOfStream(changeStreamId("3f2504e0-4f89-41d3-9a0c-0305e82c3301"))).toBe("3f2504e0-4f89-41d3-9a0c-0305e82c3301");
    expect(changeIdOfStream("ingest-audit")).toBeUndefined();
  });

  it("agree with change_id_of_stream()'s substr(stream_id, 8) (migration 0009)", () => {
    const streamId = changeStreamId("3f2504e0-4f89-41d3-9a0c-0305e82c3301");
    expect(streamId.substring(7)).toBe(changeIdOfStream(streamId));
  });
});
