import { describe, expect, it } from "vitest";
import { nodeCommandLine, SERVICE_V8_FLAGS } from "./process.js";

describe("nodeCommandLine", () => {
  it("runs compiled JavaScript with plain node and no source maps loaded, as the container image does", () => {
    expect(nodeCommandLine("/x/dist/ingest.js", [], [])).toEqual([...SERVICE_V8_FLAGS, "/x/dist/ingest.js"]);
  });

  it("runs TypeScript through the tsx loader", () => {
    expect(nodeCommandLine("/x/src/main.ts", [], ["--port", "0"])).toEqual([...SERVICE_V8_FLAGS, "--import", "tsx", "/x/src/main.ts", "--port", "0"]);
  });

  it("puts extra node flags (PWSYNC_NODE_ARGS) after the memory settings, so a profiling run can override them", () => {
    const line = nodeCommandLine("/x/dist/ingest.js", ["--cpu-prof", "--max-semi-space-size=16"], []);
    expect(line.indexOf("--max-semi-space-size=16")).toBeGreaterThan(line.indexOf("--max-semi-space-size=1"));
    expect(line.at(-1)).toBe("/x/dist/ingest.js");
  });
});
