/** Domains an agent may touch: the UPN suffixes and mail domains of its AD domain. */
export type AgentScopes = ReadonlyMap<string, readonly string[]>;

export function agentScopesFromConfig(config: Record<string, string[]>): AgentScopes {
  return new Map(Object.entries(config).map(([agent, domains]) => [agent.toLowerCase(), domains.map((d) => d.toLowerCase().replace(/^@/, ""))]));
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

export type ScopeVerdict = { ok: true; domains: readonly string[] } | { ok: false; reason: "NO_SCOPE" | "OUT_OF_SCOPE"; detail: string };

/**
 * Whether a change's claimed identifiers lie inside the sending agent's scope. An agent with no
 * configured scope may touch nothing (deny by default). The resolver checks the user it finds
 * against the same domains (stamped on ChangeCaptured), which covers changes that name the user
 * only by objectGUID.
 */
export function decideScope(scopes: AgentScopes, agentId: string, change: { userPrincipalName: string; mail: string }): ScopeVerdict {
  const domains = scopes.get(agentId);
  if (!domains || domains.length === 0) return { ok: false, reason: "NO_SCOPE", detail: `agent ${agentId} has no scope configured (ingest.agentScopes)` };
  for (const [field, value] of [
    ["user_principal_name", change.userPrincipalName],
    ["mail", change.mail],
  ] as const) {
    if (value && !domains.includes(domainOf(value)))
      return {
        ok: false,
        reason: "OUT_OF_SCOPE",
        detail: `${field} domain ${JSON.stringify(domainOf(value))} is outside agent ${agentId}'s scope (${domains.join(", ")})`,
      };
  }
  return { ok: true, domains };
}
