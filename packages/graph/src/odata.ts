/** OData string literal: quotes are doubled, so a value can never end the literal early. */
export function odataStringLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
