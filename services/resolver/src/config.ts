import { databaseSection, graphSection, z } from "@pwsync/config";

export const lookupAttribute = z.enum(["immutableId", "userPrincipalName", "mail"]);

export const resolverConfigSchema = z.object({
  database: databaseSection,
  graph: graphSection,
  resolver: z
    .object({
      /**
       * Which on-premises attribute finds the Entra user, tried in this order. The seed matched on
       * mail only ("mail attribute ... must match Identity in Office 365"); immutableId
       * (objectGUID) survives renames and is the safest first choice.
       */
      matchOrder: z.array(lookupAttribute).min(1).default(["immutableId", "userPrincipalName", "mail"]),
      healthPort: z.number().int().min(0).max(65535).default(0),
      /**
       * Keep the sealed password of a failed change for an admin retry (the reset-executor's
       * reaper shreds it when executor.retainSecretOnFailureHours ends). Off by default.
       */
      retainSecretOnFailure: z.boolean().default(false),
    })
    .default({ matchOrder: ["immutableId", "userPrincipalName", "mail"], healthPort: 0, retainSecretOnFailure: false }),
});

export type ResolverConfig = z.infer<typeof resolverConfigSchema>;
export type LookupAttribute = z.infer<typeof lookupAttribute>;
