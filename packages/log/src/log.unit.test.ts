import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "./index.js";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, logger: createLogger({ service: "test", destination }) };
}

describe("createLogger", () => {
  it("writes JSON lines naming the service", () => {
    const { lines, logger } = capture();
    logger.info({ changeId: "c1" }, "hello");
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ service: "test", level: "info", changeId: "c1", msg: "hello" });
  });

  it("redacts password-like fields at any of the first nesting levels", () => {
    const { lines, logger } = capture();
    const canary = "Canary-Redact-7731!";
    logger.info({ password: canary, request: { passwordProfile: { password: canary } }, deep: { body: { password: canary } } }, "oops");
    expect(lines.join("")).not.toContain(canary);
    expect(JSON.parse(lines[0]!).password).toBe("[redacted]");
  });
});
