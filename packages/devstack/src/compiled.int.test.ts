import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildFingerprint, compiledServices } from "./compiled.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

describe("compiledServices", () => {
  it("builds every service and stand-in once per source tree, inside the checkout, and hands the same build out again", async () => {
    const first = await compiledServices(root);
    for (const name of ["ingest", "resolver", "reset-executor", "notifier", "admin"]) expect(existsSync(path.join(first.dist, `${name}.js`)), name).toBe(true);
    for (const name of ["sandbox-tenant", "smtp-catcher"]) expect(existsSync(path.join(first.devDist, `${name}.js`)), name).toBe(true);
    // Inside the checkout, so the bundles' bare imports resolve to its node_modules.
    expect(path.relative(root, first.dist).startsWith("..")).toBe(false);
    expect(first.dist).toContain(buildFingerprint(root));
    expect(await compiledServices(root)).toEqual(first);
  });
});
