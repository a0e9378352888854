import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

// Alert text. Facts come from events only (account, DC, reason, ids, times): the notifier never
// sees a password, sealed or not, so there is nothing secret a template could reveal.

/** Who an alert is written for: each has its own subject and body template. */
export type AlertRole = "admin" | "endUser";

/** Everything a template may mention, already in words. */
export interface AlertFacts {
  changeId: string;
  account: string;
  userPrincipalName: string;
  mail: string;
  domainController: string;
  agent: string;
  /** What pwsync was doing when it failed, e.g. "setting the new password in Microsoft Entra ID". */
  stage: string;
  /** Failure reason in words. */
  reason: string;
  /** The proto enum name of the reason, for filters and scripts. */
  reasonCode: string;
  detail: string;
  /** "HTTP 400, Graph error code …", or empty. */
  graphResponse: string;
  attempts: string;
  changedAt: string;
  failedAt: string;
  /** What the end user should do next. */
  advice: string;
}

export type TemplateName = "admin-subject" | "admin-body" | "end-user-subject" | "end-user-body";
export type Templates = Record<TemplateName, string>;

const PLACEHOLDERS = new Set<keyof AlertFacts>([
  "changeId",
  "account",
  "userPrincipalName",
  "mail",
  "domainController",
  "agent",
  "stage",
  "reason",
  "reasonCode",
  "detail",
  "graphResponse",
  "attempts",
  "changedAt",
  "failedAt",
  "advice",
]);

export const DEFAULT_TEMPLATES: Templates = {
  "admin-subject": "Password sync failed for {{account}}: {{reason}}",
  "admin-body": `A password change made in Active Directory could not be synchronised to Microsoft Entra ID (Microsoft 365).

Account:            {{account}}
User principal name: {{userPrincipalName}}
Mail:               {{mail}}
Domain controller:  {{domainController}} (agent {{agent}})
Changed in AD at:   {{changedAt}}
Failed at:          {{failedAt}}

What failed:        {{stage}}
Reason:             {{reason}} ({{reasonCode}})
Detail:             {{detail}}
Graph response:     {{graphResponse}}
Attempts:           {{attempts}}

The user's Microsoft 365 password is unchanged. pwsync will not retry this change; the next
password change for this account will be synchronised as usual.

Change id: {{changeId}} (look it up with the admin API to see the full timeline)
`,
  "end-user-subject": "Your new password could not be synchronised to Microsoft 365",
  "end-user-body": `Hello,

You changed the Windows password of the account {{account}} at {{changedAt}}.
The new password could not be synchronised to Microsoft 365, so your Microsoft 365 password
(Outlook, Teams, OneDrive, office.com) is still the previous one.

Reason: {{reason}}

What to do: {{advice}}

Your IT administrators have been informed. If you ask them for help, quote this reference:
{{changeId}}

This message was sent automatically by the password synchronisation service. It never
contains your password, and nobody will ask you for your password by email.
`,
};

const FILES: Record<TemplateName, string> = {
  "admin-subject": "admin-subject.txt",
  "admin-body": "admin-body.txt",
  "end-user-subject": "end-user-subject.txt",
  "end-user-body": "end-user-body.txt",
};

export class TemplateError extends Error {}

/** Built-in templates, each replaced by its file in `dir` when present. Checked at startup. */
export function loadTemplates(dir: string | undefined): Templates {
  const templates: Templates = { ...DEFAULT_TEMPLATES };
  if (dir) {
    if (!existsSync(dir)) throw new TemplateError(`templatesDir ${dir} does not exist`);
    for (const [name, file] of Object.entries(FILES) as [TemplateName, string][]) {
      const full = path.join(dir, file);
      if (existsSync(full)) templates[name] = readFileSync(full, "utf8");
    }
  }
  for (const [name, text] of Object.entries(templates)) checkTemplate(name, text);
  return templates;
}

export function checkTemplate(name: string, text: string): void {
  const unknown = [...text.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)].map((m) => m[1]!).filter((p) => !PLACEHOLDERS.has(p as keyof AlertFacts));
  if (unknown.length) {
    throw new TemplateError(
      `template ${name} uses unknown placeholder(s) ${unknown.map((p) => `{{${p}}}`).join(", ")}; known: ${[...PLACEHOLDERS].join(", ")}`,
    );
  }
}

function fill(text: string, facts: AlertFacts): string {
  return text.replace(/\{\{\s*([^}]*?)\s*\}\}/g, (_, name: string) => {
    const value = facts[name as keyof AlertFacts];
    return value === undefined || value === "" ? "(unknown)" : value;
  });
}

export interface RenderedMail {
  subject: string;
  text: string;
}

export function render(templates: Templates, role: AlertRole, facts: AlertFacts): RenderedMail {
  const prefix = role === "admin" ? "admin" : "end-user";
  // A value from AD (an account name) must not be able to start a new header line.
  const subject = fill(templates[`${prefix}-subject`], facts)
    .replace(/[\r\n]+/g, " ")
    .trim();
  return { subject, text: fill(templates[`${prefix}-body`], facts) };
}
