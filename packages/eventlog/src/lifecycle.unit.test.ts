import { describe, expect, it } from "vitest";
import {
  CHANGE_OUTCOME_TYPES,
  CHANGE_STATE_AFTER,
  CHANGE_STEP_TYPES,
  FAILED_OUTCOME_TYPES,
  isChangeOutcome,
  isChangeStep,
  isFailedOutcome,
} from "./lifecycle.js";

describe("the change lifecycle", () => {
  it("calls failed exactly the outcomes whose step leaves a change in the failed state", () => {
    expect([...FAILED_OUTCOME_TYPES].sort()).toEqual(CHANGE_STEP_TYPES.filter((t) => CHANGE_STATE_AFTER[t] === "failed").sort());
  });

  it("ends a change with a password set, a failure, a newer change, or a refusal at ingest, and with nothing else", () => {
    expect(["PasswordSet", "ResetFailed", "ResolutionFailed", "Superseded", "ChangeRefused"].every(isChangeOutcome)).toBe(true);
    for (const type of ["ChangeCaptured", "UserResolved", "RetryScheduled", "RetryRequested", "SecretShredded", "NotificationSent"]) {
      expect(isChangeOutcome(type), type).toBe(false);
    }
    expect(CHANGE_OUTCOME_TYPES.filter((t) => !isChangeStep(t))).toEqual(["ChangeRefused"]);
  });

  it("treats bookkeeping events and unknown names as neither steps nor failures", () => {
    for (const type of ["SecretShredded", "NotificationFailed", "toString", "constructor"]) {
      expect(isChangeStep(type), type).toBe(false);
      expect(isFailedOutcome(type), type).toBe(false);
    }
  });
});
