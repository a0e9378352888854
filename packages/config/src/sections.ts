import { z } from "zod";

// Sections shared by several services, so each service's schema composes them identically.

export const databaseSection = z.object({
  url: z.string().min(1, "the Postgres connection string is required"),
  maxConnections: z.number().int().min(2).max(200).default(10),
});

/**
 * Microsoft Graph application credentials (replaces the seed's MSOL "User"/"Pass": an app
 * registration with User.ReadWrite.All and the User Administrator role, no user account).
 */
export const graphSection = z
  .object({
    tenantId: z.string().min(1),
    clientId: z.string().min(1),
    clientSecret: z.string().min(1).optional(),
    certificatePath: z.string().min(1).optional(),
    /** Token authority; only the sandbox tenant changes it. */
    authorityHost: z.string().url().default("https://login.microsoftonline.com"),
    baseUrl: z.string().url().default("https://graph.microsoft.com"),
    /** Extra CA to trust (PEM file): the dev PKI's CA when talking to the sandbox tenant. */
    caFile: z.string().optional(),
    /** Per-request timeout (the seed's "Timeout" on the server side). */
    requestTimeoutMs: z.number().int().min(1000).max(300_000).default(30_000),
  })
  .refine((g) => (g.clientSecret === undefined) !== (g.certificatePath === undefined), {
    message: "configure exactly one of graph.clientSecret or graph.certificatePath",
  });

export type DatabaseSection = z.infer<typeof databaseSection>;
export type GraphSection = z.infer<typeof graphSection>;
