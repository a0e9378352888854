import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/**/*.test.ts", "services/**/*.test.ts", "dev/**/*.test.ts", "dc-agent/**/*.test.ts", "scripts/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["**/node_modules/**", ".state/**", "**/.state/**"],
    globalSetup: ["./packages/testkit/src/global-setup.ts"],
    // Bounds, not schedules: sized for a loaded 2-core machine (real servers start in these hooks).
    testTimeout: 180_000,
    hookTimeout: 180_000,
    // Two cores: integration tests start real servers; keep parallelism modest.
    maxWorkers: 2,
    pool: "forks",
  },
});
