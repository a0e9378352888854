import type { GraphClient } from "./client.js";
import { odataStringLiteral } from "./odata.js";

export type UserLookupAttribute = "immutableId" | "mail" | "userPrincipalName";

export interface EntraUser {
  id: string;
  userPrincipalName: string;
  mail: string | null;
  accountEnabled: boolean;
  onPremisesSyncEnabled: boolean | null;
}

const GRAPH_PROPERTY: Record<UserLookupAttribute, string> = {
  immutableId: "onPremisesImmutableId",
  mail: "mail",
  userPrincipalName: "userPrincipalName",
};

const SELECT = ["id", "userPrincipalName", "mail", "accountEnabled", "onPremisesSyncEnabled"];

/** The `$filter` that finds a user by one attribute (OData-quoted, not yet URL-encoded). */
export function lookupFilter(by: UserLookupAttribute, value: string): string {
  return `${GRAPH_PROPERTY[by]} eq ${odataStringLiteral(value)}`;
}

/**
 * The lookup's path and query as `$batch` carries it. Encoded as the single request encodes it
 * (the filter with encodeURIComponent, see findUsers), so both ask Graph the same question.
 */
export function lookupPath(by: UserLookupAttribute, value: string): string {
  return `/users?$filter=${encodeURIComponent(lookupFilter(by, value))}&$select=${SELECT.join(",")}&$top=2`;
}

/** A user collection answer (`{ value: [...] }`) as pwsync's users. */
export function toEntraUsers(response: unknown): EntraUser[] {
  return ((response as { value?: Partial<EntraUser>[] } | null)?.value ?? []).map((user) => ({
    id: String(user.id),
    userPrincipalName: String(user.userPrincipalName),
    mail: user.mail ?? null,
    accountEnabled: user.accountEnabled ?? false,
    onPremisesSyncEnabled: user.onPremisesSyncEnabled ?? null,
  }));
}

/** The PATCH body that sets a password. */
export function passwordPatch(password: string, forceChangePasswordNextSignIn: boolean): object {
  return { passwordProfile: { password, forceChangePasswordNextSignIn } };
}

export async function findUsers(client: GraphClient, by: UserLookupAttribute, value: string): Promise<EntraUser[]> {
  const filter = lookupFilter(by, value);
  const response = await client.sdk
    .api("/users")
    // The SDK pastes query options into the URL verbatim (GraphRequest.createQueryString), so a
    // '+', '&' or '#' in a mail address would be mangled or start a new parameter: encode it here.
    .filter(encodeURIComponent(filter))
    .select(SELECT)
    // Two are enough to tell a unique match from an ambiguous one.
    .top(2)
    .get();
  return toEntraUsers(response);
}

export interface SetPasswordOptions {
  forceChangePasswordNextSignIn: boolean;
  /**
   * Aborts the request; once aborted before the request leaves (e.g. while the token is being
   * fetched), it is never sent. Fencing relies on that: no write goes out after its deadline.
   */
  signal?: AbortSignal;
}

/** PATCH /users/{id} passwordProfile. Throws the SDK's GraphError; see classifyGraphError. */
export async function setPassword(
  client: GraphClient,
  userId: string,
  password: string,
  options: SetPasswordOptions = { forceChangePasswordNextSignIn: false },
): Promise<void> {
  const request = client.sdk.api(`/users/${encodeURIComponent(userId)}`);
  if (options.signal) request.option("signal", options.signal);
  await request.patch(passwordPatch(password, options.forceChangePasswordNextSignIn));
}
