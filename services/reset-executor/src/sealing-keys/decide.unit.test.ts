import type { SealingKeyEpoch } from "@pwsync/crypto";
import { describe, expect, it } from "vitest";
import { decideKeyActions, type KeyPolicy } from "./decide.js";

const DAY = 86_400_000;
const policy: KeyPolicy = { rotateAfterMs: 30 * DAY, overlapMs: 7 * DAY, destroyGraceMs: 10 * 60_000 };
const t0 = new Date("2026-01-01T00:00:00Z");
const at = (ms: number) => new Date(t0.getTime() + ms);
const epoch = (over: Partial<SealingKeyEpoch> & { keyId: string; epoch: number }): SealingKeyEpoch => ({ publicKeyPem: "", createdAt: t0, ...over });

describe("decideKeyActions", () => {
  it("given key files no epoch names, then they are adopted first", () => {
    expect(decideKeyActions(policy, { epochs: [], onDisk: ["k1"], liveSecrets: new Map(), now: t0 })).toEqual([{ kind: "adopt", keyIds: ["k1"] }]);
  });

  it("given a current key younger than the rotation period, then nothing happens", () => {
    expect(decideKeyActions(policy, { epochs: [epoch({ keyId: "k1", epoch: 1 })], onDisk: ["k1"], liveSecrets: new Map(), now: at(29 * DAY) })).toEqual([]);
  });

  it("given a current key as old as the rotation period, then it rotates", () => {
    const k1 = epoch({ keyId: "k1", epoch: 1 });
    expect(decideKeyActions(policy, { epochs: [k1], onDisk: ["k1"], liveSecrets: new Map(), now: at(30 * DAY) })).toEqual([{ kind: "rotate", current: k1 }]);
  });

  it("given rotation off, then the current key stays however old", () => {
    expect(
      decideKeyActions(
        { ...policy, rotateAfterMs: 0 },
        { epochs: [epoch({ keyId: "k1", epoch: 1 })], onDisk: ["k1"], liveSecrets: new Map(), now: at(999 * DAY) },
      ),
    ).toEqual([]);
  });

  describe("given k1 replaced by k2 with overlap until day 37", () => {
    const k1 = epoch({ keyId: "k1", epoch: 1, acceptUntil: at(37 * DAY) });
    const k2 = epoch({ keyId: "k2", epoch: 2, createdAt: at(30 * DAY) });
    const situation = (now: Date, live = 0) => ({ epochs: [k1, k2], onDisk: ["k1", "k2"], liveSecrets: new Map([["k1", live]]), now });

    it("when still in the overlap, then k1 is kept", () => {
      expect(decideKeyActions(policy, situation(at(36 * DAY)))).toEqual([]);
    });
    it("when the overlap passed but not the grace, then k1 is kept", () => {
      expect(decideKeyActions(policy, situation(at(37 * DAY + 60_000)))).toEqual([]);
    });
    it("when overlap and grace passed but a live sealed secret still refers to k1, then k1 is kept", () => {
      expect(decideKeyActions(policy, situation(at(38 * DAY), 1))).toEqual([]);
    });
    it("when overlap and grace passed and no live secret refers to k1, then k1 is destroyed", () => {
      expect(decideKeyActions(policy, situation(at(38 * DAY)))).toEqual([{ kind: "destroy", epoch: k1, fileOnDisk: true }]);
    });
  });

  it("given a destroyed epoch whose file survived (crash after the commit), then the file is wiped", () => {
    const k1 = epoch({ keyId: "k1", epoch: 1, acceptUntil: at(7 * DAY), destroyedAt: at(8 * DAY) });
    const k2 = epoch({ keyId: "k2", epoch: 2 });
    expect(decideKeyActions(policy, { epochs: [k1, k2], onDisk: ["k1", "k2"], liveSecrets: new Map(), now: at(9 * DAY) })).toEqual([
      { kind: "wipe", keyId: "k1" },
    ]);
  });
});
