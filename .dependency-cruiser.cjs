// The layering pwsync keeps, checked in CI (scripts/test.sh → npm run check:imports):
//   packages/*  shared building blocks: never import a service, the DC agent or a dev stand-in
//   services/*  one service each: import packages, never another service
//   dev/*       stand-ins for Microsoft Graph and the SMTP relay (sandbox-tenant, smtp-catcher):
//               only the launcher (packages/devstack) and tests start or import them
//   the launcher (devstack) and test helpers (testkit) are for development and tests only:
//   production code never imports them.
// Tests, test support, scripts and the launcher itself may import anything.
const testOrTool = "(\\.test\\.ts$|/test-support/|^test/|^scripts/|/test/|^packages/devstack/|^packages/testkit/)";
const launcherOrTestKit = "^packages/(devstack|testkit)/";

module.exports = {
  forbidden: [
    {
      name: "package-imports-service",
      comment: "packages/* are shared building blocks; a service's code belongs to that service",
      severity: "error",
      from: { path: "^packages/", pathNot: testOrTool },
      to: { path: "^(services|dc-agent)/" },
    },
    {
      name: "service-imports-other-service",
      comment: "a service imports packages, never another service",
      severity: "error",
      from: { path: "^services/([^/]+)/", pathNot: testOrTool },
      to: { path: "^services/([^/]+)/", pathNot: "^services/$1/" },
    },
    {
      name: "imports-dev-stand-in",
      comment: "the dev stand-ins (dev/) never ship: under packages/, services/ and dc-agent/ only the launcher and tests reach them",
      severity: "error",
      from: { path: "^(packages|services|dc-agent)/", pathNot: testOrTool },
      to: { path: "^dev/" },
    },
    {
      name: "production-imports-dev-only",
      comment: "the launcher and test kit never ship in production code",
      severity: "error",
      from: { path: "^(services|packages|dc-agent)/", pathNot: [testOrTool, launcherOrTestKit] },
      to: { path: launcherOrTestKit },
    },
    {
      name: "no-circular",
      comment: "a cycle through a type-only import vanishes at compile time and is allowed",
      severity: "error",
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(node_modules|dist|dist-dev|gen)/" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "default", "node"] },
  },
};
