import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { EventPayload } from "@pwsync/proto";

/**
 * Which of two changes of one user is the newer one: the rule that keeps an older password
 * from overwriting a newer one in Entra ID.
 *
 * The key is (capture time, domain controller, capture sequence, change id), compared in that
 * order. Capture time is what the capture source stamped when the change happened (the LSA
 * filter, inside PasswordChangeNotify, 100 ns resolution) — not AD's pwdLastSet read later by
 * the agent, which a spooled older change drained after a newer one would share with the newer
 * one. The rest only breaks ties, deterministically: on one DC the filter's sequence follows
 * the order LSA called it; between DCs with equal capture times the DC name decides (arbitrary
 * but the same on every replica and in every processing order); the change id makes the order
 * total, so two different changes are never "equal" and a tie can never let both through.
 *
 * The key is a byte string so Postgres can compare it (bytea compares bytewise) in the
 * executor_user_state upsert exactly as this module does.
 */
export interface OrderFacts {
  changeId: string;
  /** Absent from changes of older agents: changedAt stands in. */
  capturedAt?: Timestamp | undefined;
  changedAt?: Timestamp | undefined;
  domainController: string;
  captureSequence: bigint;
}

const NS_PER_S = 1_000_000_000n;

function nanosSinceEpoch(t: Timestamp | undefined): bigint {
  if (!t) return 0n;
  const ns = BigInt(t.seconds) * NS_PER_S + BigInt(t.nanos);
  // Before 1970 cannot be a real capture; clamp so the key stays unsigned.
  return ns < 0n ? 0n : BigInt.asUintN(64, ns);
}

export function orderKey(facts: OrderFacts): Buffer {
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(nanosSinceEpoch(facts.capturedAt ?? facts.changedAt));
  const sequence = Buffer.alloc(8);
  sequence.writeBigUInt64BE(BigInt.asUintN(64, facts.captureSequence));
  // NUL after the name: "dc1" sorts before "dc10" whatever follows.
  return Buffer.concat([time, Buffer.from(facts.domainController.toLowerCase(), "utf8"), Buffer.from([0]), sequence, Buffer.from(facts.changeId, "utf8")]);
}

/** Negative when a is older than b, positive when newer, 0 only for the same change. */
export function compareChanges(a: OrderFacts, b: OrderFacts): number {
  return Buffer.compare(orderKey(a), orderKey(b));
}

/** The decision the executor takes for `candidate` when `other` is the user's newest known change. */
export function supersededBy(candidate: Buffer, other: Buffer | undefined): boolean {
  return other !== undefined && Buffer.compare(other, candidate) > 0;
}

export function orderFactsOfResolved(resolved: EventPayload<"UserResolved">): OrderFacts {
  return {
    changeId: resolved.changeId,
    capturedAt: resolved.capturedAt,
    changedAt: resolved.changedAt,
    domainController: resolved.domainController,
    captureSequence: resolved.captureSequence,
  };
}
