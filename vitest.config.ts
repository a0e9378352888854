import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/**/*.test.ts", "services/**/*.test.ts", "dc-agent/**/*.test.ts", "scripts/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", ".state/**", "**/.state/**"],
    globalSetup: ["./packages/testkit/src/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: integration tests start real servers; keep parallelism modest.
    maxWorkers: 2,
    pool: "forks",
  },
});
