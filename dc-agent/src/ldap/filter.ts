import { Filter, FilterParser } from "ldapts";

/** AD's LDAP_MATCHING_RULE_IN_CHAIN: membership through any depth of nested groups. */
export const IN_CHAIN = "1.2.840.113556.1.4.1941";
/** userAccountControl ACCOUNTDISABLE. */
export const ACCOUNTDISABLE = 0x2;

export class FilterTemplateError extends Error {}

/**
 * The seed's filter with `{0}` replaced by the account name, escaped per RFC 4515 by ldapts
 * (`*`, `(`, `)`, `\`, NUL become `\2a` ...), so an account name can never add filter syntax.
 * Group scoping adds `(memberOf:1.2.840.113556.1.4.1941:=<dn>)` clauses (any of the groups).
 */
export function buildLookupFilter(template: string, accountName: string, groups: readonly string[] = []): string {
  const escaped = Filter.escape(accountName);
  const base = template.split("{0}").join(escaped);
  if (groups.length === 0) return base;
  const clauses = groups.map((dn) => `(memberOf:${IN_CHAIN}:=${Filter.escape(dn)})`);
  return `(&${base}${clauses.length === 1 ? clauses[0] : `(|${clauses.join("")})`})`;
}

/** Checks a configured template once at start: it must contain `{0}` and parse as a filter. */
export function checkFilterTemplate(template: string): void {
  if (!template.includes("{0}")) throw new FilterTemplateError(`ldap.filter must contain {0} (the account name): ${template}`);
  // ldapts' parser tolerates a missing closing parenthesis; count them ourselves (values
  // cannot contain bare parentheses: RFC 4515 requires them escaped as \28 / \29).
  let depth = 0;
  for (const ch of template) {
    depth += ch === "(" ? 1 : ch === ")" ? -1 : 0;
    if (depth < 0) break;
  }
  if (depth !== 0 || !template.startsWith("(")) throw new FilterTemplateError(`ldap.filter is not a valid LDAP filter (unbalanced parentheses): ${template}`);
  try {
    FilterParser.parseString(buildLookupFilter(template, "probe"));
  } catch (err) {
    throw new FilterTemplateError(`ldap.filter is not a valid LDAP filter: ${template}: ${(err as Error).message}`);
  }
}
