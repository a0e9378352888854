import { readFile } from "node:fs/promises";
import { z } from "zod";

const userSchema = z.object({
  id: z.string().min(1),
  userPrincipalName: z.string().min(1),
  displayName: z.string().optional(),
  mail: z.string().nullable().default(null),
  onPremisesImmutableId: z.string().nullable().default(null),
  accountEnabled: z.boolean().default(true),
  onPremisesSyncEnabled: z.boolean().nullable().default(null),
  // Models targets an app-only caller may not reset (e.g. admins needing Privileged Authentication Administrator).
  adminProtected: z.boolean().default(false),
});

export type SandboxUser = z.infer<typeof userSchema>;

const usersFileSchema = z.union([z.array(userSchema), z.object({ users: z.array(userSchema) }).transform((f) => f.users)]);

export function parseUsers(json: unknown): SandboxUser[] {
  const users = usersFileSchema.parse(json);
  const ids = new Set<string>();
  for (const user of users) {
    if (ids.has(user.id)) throw new Error(`duplicate user id in users file: ${user.id}`);
    ids.add(user.id);
  }
  return users;
}

export async function loadUsersFile(path: string): Promise<SandboxUser[]> {
  return parseUsers(JSON.parse(await readFile(path, "utf8")));
}

// Graph's default property set for a user when no $select is given.
const DEFAULT_PROPERTIES = [
  "businessPhones",
  "displayName",
  "givenName",
  "jobTitle",
  "mail",
  "mobilePhone",
  "officeLocation",
  "preferredLanguage",
  "surname",
  "userPrincipalName",
  "id",
];

/** Projects a user to Graph's wire representation, honouring $select. */
export function toGraphUser(user: SandboxUser, select?: string[]): Record<string, unknown> {
  const full: Record<string, unknown> = {
    id: user.id,
    businessPhones: [],
    displayName: user.displayName ?? user.userPrincipalName,
    givenName: null,
    jobTitle: null,
    mail: user.mail,
    mobilePhone: null,
    officeLocation: null,
    preferredLanguage: null,
    surname: null,
    userPrincipalName: user.userPrincipalName,
    accountEnabled: user.accountEnabled,
    onPremisesImmutableId: user.onPremisesImmutableId,
    onPremisesSyncEnabled: user.onPremisesSyncEnabled,
  };
  const fields = select ?? DEFAULT_PROPERTIES;
  const projected: Record<string, unknown> = {};
  for (const field of fields) {
    const key = Object.keys(full).find((candidate) => candidate.toLowerCase() === field.toLowerCase());
    if (key) projected[key] = full[key];
  }
  return projected;
}

// Entra compares these string properties case-insensitively; the immutable ID is base64 and exact.
const FILTERABLE: Record<string, { key: keyof SandboxUser; caseInsensitive: boolean }> = {
  id: { key: "id", caseInsensitive: true },
  userprincipalname: { key: "userPrincipalName", caseInsensitive: true },
  mail: { key: "mail", caseInsensitive: true },
  onpremisesimmutableid: { key: "onPremisesImmutableId", caseInsensitive: false },
};

export function isFilterable(property: string): boolean {
  return property.toLowerCase() in FILTERABLE;
}

export function matches(user: SandboxUser, property: string, value: string): boolean {
  const rule = FILTERABLE[property.toLowerCase()];
  if (!rule) return false;
  const actual = user[rule.key];
  if (typeof actual !== "string") return false;
  return rule.caseInsensitive ? actual.toLowerCase() === value.toLowerCase() : actual === value;
}

/**
 * Lookups by filterable property and by id/UPN in O(1): a linear scan per request made the
 * sandbox, not pwsync, the bottleneck of every benchmark with thousands of users.
 */
export class UserIndex {
  private readonly byProperty = new Map<string, Map<string, SandboxUser[]>>();
  private readonly byIdOrUpn = new Map<string, SandboxUser>();

  constructor(users: readonly SandboxUser[]) {
    for (const [property, rule] of Object.entries(FILTERABLE)) {
      const map = new Map<string, SandboxUser[]>();
      for (const user of users) {
        const actual = user[rule.key];
        if (typeof actual !== "string") continue;
        const key = rule.caseInsensitive ? actual.toLowerCase() : actual;
        map.set(key, [...(map.get(key) ?? []), user]);
      }
      this.byProperty.set(property, map);
    }
    for (const user of users) {
      this.byIdOrUpn.set(user.id.toLowerCase(), user);
      this.byIdOrUpn.set(user.userPrincipalName.toLowerCase(), user);
    }
  }

  /** The users `matches(user, property, value)` accepts, in file order. */
  find(property: string, value: string): SandboxUser[] {
    const rule = FILTERABLE[property.toLowerCase()];
    if (!rule) return [];
    return this.byProperty.get(property.toLowerCase())?.get(rule.caseInsensitive ? value.toLowerCase() : value) ?? [];
  }

  findByIdOrUpn(idOrUpn: string): SandboxUser | undefined {
    return this.byIdOrUpn.get(idOrUpn.toLowerCase());
  }
}
