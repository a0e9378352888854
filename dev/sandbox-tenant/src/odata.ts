/** The subset of OData $filter the sandbox understands: `<property> eq '<string literal>'`. */
export interface EqualityFilter {
  property: string;
  value: string;
}

export class ODataFilterError extends Error {}

const FILTER = /^\s*([A-Za-z][A-Za-z0-9]*)\s+eq\s+'((?:[^']|'')*)'\s*$/;

export function parseEqualityFilter(filter: string): EqualityFilter {
  const match = FILTER.exec(filter);
  if (!match) throw new ODataFilterError(`Invalid filter clause: ${filter}`);
  // In OData a quote inside a string literal is written as two quotes.
  return { property: match[1]!, value: match[2]!.replace(/''/g, "'") };
}

export function parseSelect(select: string | null): string[] | undefined {
  if (select === null) return undefined;
  const fields = select
    .split(",")
    .map((field) => field.trim())
    .filter((field) => field.length > 0);
  return fields.length > 0 ? fields : undefined;
}
