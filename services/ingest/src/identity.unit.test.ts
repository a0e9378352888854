import { describe, expect, it } from "vitest";
import { decideAgentIdentity } from "./identity.js";

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const peer = (over: { CN?: string; san?: string; eku?: string[] } = {}) => ({
  subject: { CN: over.CN ?? "dc01" } as never,
  subjectaltname: over.san ?? "URI:spiffe://pwsync/agent/dc01",
  fingerprint256: "AA:BB",
  ext_key_usage: "eku" in over ? over.eku : [CLIENT_AUTH],
});

describe("decideAgentIdentity", () => {
  it("given clientAuth and one agent URI SAN, then the agent is the DC the URI names (not the CN)", () => {
    expect(decideAgentIdentity(peer({ CN: "anything", san: "URI:spiffe://pwsync/agent/DC07.corp.example" }))).toEqual({
      ok: true,
      agent: { agentId: "dc07.corp.example", commonName: "anything", fingerprint256: "AA:BB" },
    });
  });

  it.each([
    ["no EKU at all", peer({ eku: undefined }), /no extended key usage/],
    ["serverAuth only", peer({ eku: [SERVER_AUTH] }), /does not include clientAuth/],
    ["an admin's URI SAN", peer({ san: "URI:spiffe://pwsync/admin/alice" }), /admin certificate/],
    ["an admin role next to an agent URI", peer({ san: "URI:spiffe://pwsync/agent/dc01, URI:spiffe://pwsync/admin/alice" }), /admin certificate/],
    ["no URI SAN (CN only)", peer({ san: "DNS:mallory-agent" }), /no agent URI SAN/],
    ["two agent URIs", peer({ san: "URI:spiffe://pwsync/agent/dc01, URI:spiffe://pwsync/agent/dc02" }), /more than one agent/],
    ["a path in the DC name", peer({ san: "URI:spiffe://pwsync/agent/dc01/../x" }), /invalid domain controller/],
    ["another trust domain", peer({ san: "URI:spiffe://other/agent/dc01" }), /no agent URI SAN/],
  ])("given %s, then it is refused", (_name, certificate, detail) => {
    const verdict = decideAgentIdentity(certificate);
    expect(verdict.ok).toBe(false);
    if (!verdict.ok) expect(verdict.detail).toMatch(detail);
  });
});
