import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { events, ResetFailureReason } from "@pwsync/proto";

// One failed change, shared by the template tests.
export const change = create(events.ChangeCaptured, {
  changeId: "7b0c6a52-55a4-4c33-9b57-0e7f2f1f7d10",
  agentId: "dc01-agent",
  domainController: "DC01.corp.example",
  accountName: "jdoe",
  userPrincipalName: "jdoe@corp.example",
  mail: "john.doe@corp.example",
  changedAt: timestampFromDate(new Date("2025-03-01T09:59:58Z")),
});
export const complexity = {
  type: "ResetFailed" as const,
  payload: create(events.ResetFailed, {
    changeId: change.changeId,
    reason: ResetFailureReason.COMPLEXITY,
    detail: "Graph said: The specified password does not comply with password complexity requirements.",
    httpStatus: 400,
    graphErrorCode: "Request_BadRequest",
    attempts: 1,
  }),
};
export const failedAt = new Date("2025-03-01T10:00:01Z");
