import { consumerGroupStatus, listAgentStatus, type EventLog } from "@pwsync/eventlog";

/** Consumer lag per group and queue depth per agent, for the backlog gauges. */
export async function backlog(log: EventLog): Promise<{ consumerLag: Record<string, number>; agentQueueDepth: Record<string, number> }> {
  const [groups, agents] = await Promise.all([consumerGroupStatus(log.db), listAgentStatus(log.db)]);
  return {
    consumerLag: Object.fromEntries(groups.map((g) => [g.group, g.lag])),
    agentQueueDepth: Object.fromEntries(agents.map((a) => [a.agentId, a.queueDepth])),
  };
}
