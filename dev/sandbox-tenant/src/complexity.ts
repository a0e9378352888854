/**
 * Entra ID's cloud password complexity: 8..256 characters and at least three of
 * lowercase, uppercase, digits and symbols. (The banned-password list is not modelled.)
 */
export function meetsEntraComplexity(password: string): boolean {
  const length = [...password].length;
  if (length < 8 || length > 256) return false;
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  return classes >= 3;
}
