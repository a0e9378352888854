// A JSON import, not a file read: the Windows build (esbuild) inlines it, so the single
// executable reports the version of the package it was built from, and nothing is read
// from disk at import.
import agentPackage from "../package.json" with { type: "json" };

export const AGENT_VERSION: string = agentPackage.version;
