/**
 * Entra ID's cloud password rules (learn.microsoft.com, "password policies"): 8–256 characters
 * and at least three of: lowercase, uppercase, digits, symbols. Checked before calling Graph so
 * a change that is bound to fail does so at once with a reason an admin can act on. The result
 * describes the password's shape only, never its content.
 */
export type RuleVerdict = { ok: true } | { ok: false; detail: string };

const MAX_LENGTH = 256;

export function checkEntraPasswordRules(password: string, minLength = 8): RuleVerdict {
  const length = [...password].length;
  if (length < minLength) return { ok: false, detail: `the new password has ${length} characters; Entra ID requires at least ${minLength}` };
  if (length > MAX_LENGTH) return { ok: false, detail: `the new password has ${length} characters; Entra ID allows at most ${MAX_LENGTH}` };
  const classes = [/\p{Ll}/u.test(password), /\p{Lu}/u.test(password), /\p{Nd}/u.test(password), /[^\p{Ll}\p{Lu}\p{Nd}]/u.test(password)].filter(
    Boolean,
  ).length;
  if (classes < 3)
    return {
      ok: false,
      detail: `the new password uses ${classes} of the 4 character classes (lowercase, uppercase, digits, symbols); Entra ID requires 3 — enforce complexity in the AD password policy too`,
    };
  return { ok: true };
}
