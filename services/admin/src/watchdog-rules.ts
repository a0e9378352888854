import type { AgentRow } from "@pwsync/eventlog";
import type { WatchdogSettings } from "./config.js";

export type AlertKind = "agent_silent" | "filter_not_loaded" | "queue_aged" | "spool_aged" | "dc_silent";

export interface Alert {
  kind: AlertKind;
  subject: string;
  detail: string;
}

export const alertKey = (a: Pick<Alert, "kind" | "subject">) => `${a.kind}-${a.subject}`;

function ago(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  return minutes < 120 ? `${minutes} min` : `${Math.round(minutes / 60)} h`;
}

/**
 * The silent failures, from the agents' last heartbeats and the log: what should be alerting
 * right now. Pure, so every threshold is tested without a clock or a database.
 */
export function evaluate(agents: AgentRow[], lastCaptureByDc: ReadonlyMap<string, Date>, settings: WatchdogSettings, now: Date, watchingSince: Date): Alert[] {
  const alerts: Alert[] = [];
  const nowMs = now.getTime();
  for (const agent of agents) {
    const silentFor = nowMs - agent.lastHeartbeatAt.getTime();
    if (silentFor > settings.heartbeatMissedSeconds * 1000) {
      alerts.push({
        kind: "agent_silent",
        subject: agent.agentId,
        detail: `agent ${agent.agentId} on ${agent.domainController} has sent no heartbeat for ${ago(silentFor)} (last at ${agent.lastHeartbeatAt.toISOString()}): password changes on that DC are not reaching Entra ID; check the pwsync-agent service and its network path to ingest`,
      });
      // What a silent agent last said is stale; only its silence is news.
      continue;
    }
    if (!agent.filterLoaded)
      alerts.push({
        kind: "filter_not_loaded",
        subject: agent.agentId,
        detail: `agent ${agent.agentId} reports that the password filter DLL is not loaded in LSASS on ${agent.domainController}: no change made on that DC is captured; check the Notification Packages registry value, reboot, and LSA protection (event 16953 means the DLL is not signed as required)`,
      });
    if (agent.oldestQueuedAgeSeconds > settings.queueAgeSeconds)
      alerts.push({
        kind: "queue_aged",
        subject: agent.agentId,
        detail: `agent ${agent.agentId} on ${agent.domainController} holds ${agent.queueDepth} queued change(s), the oldest ${ago(agent.oldestQueuedAgeSeconds * 1000)} old: it cannot deliver to ingest (certificate, network, or server down)`,
      });
    if (agent.spoolDepth > 0 && agent.oldestSpooledAgeSeconds > settings.spoolAgeSeconds)
      alerts.push({
        kind: "spool_aged",
        subject: agent.agentId,
        detail: `the password filter on ${agent.domainController} has ${agent.spoolDepth} change(s) in its spool folder that agent ${agent.agentId} has not drained, the oldest ${ago(agent.oldestSpooledAgeSeconds * 1000)} old: they have not reached Entra ID; check the agent's log (DPAPI helper, spool folder owner) and dc-agent verify`,
      });
  }
  const dcs = new Set([...settings.knownDomainControllers, ...agents.map((a) => a.domainController).filter(Boolean)]);
  for (const dc of dcs) {
    const last = lastCaptureByDc.get(dc);
    const since = last ?? watchingSince;
    const quietFor = nowMs - since.getTime();
    if (quietFor > settings.dcSilentHours * 3_600_000)
      alerts.push({
        kind: "dc_silent",
        subject: dc,
        detail: last
          ? `no password change has arrived from domain controller ${dc} for ${ago(quietFor)} (last at ${last.toISOString()}): the filter or agent may be missing there, or the LDAP scope filters everyone out`
          : `no password change has ever arrived from domain controller ${dc} (watching for ${ago(quietFor)}): is the agent installed there, and does the LDAP scope match anyone?`,
      });
  }
  return alerts;
}
