import { describe, expect, it } from "vitest";
import { buildLookupFilter, checkFilterTemplate } from "./filter.js";

const SEED = "(&(samAccountName={0})(objectCategory=person)(objectClass=user))";

describe("lookup filter", () => {
  it("escapes every RFC 4515 metacharacter of the account name", () => {
    expect(buildLookupFilter(SEED, "a*b(c)d\\e\u0000")).toBe("(&(samAccountName=a\\2ab\\28c\\29d\\5ce\\00)(objectCategory=person)(objectClass=user))");
  });

  it("keeps non-ASCII names as they are", () => {
    expect(buildLookupFilter("(samAccountName={0})", "zoë")).toBe("(samAccountName=zoë)");
  });

  it("replaces every {0}", () => {
    expect(buildLookupFilter("(|(samAccountName={0})(cn={0}))", "x*")).toBe("(|(samAccountName=x\\2a)(cn=x\\2a))");
  });

  it("adds nested-group clauses, ORed when there are several", () => {
    expect(buildLookupFilter("(samAccountName={0})", "a", ["CN=G1,DC=x"])).toBe("(&(samAccountName=a)(memberOf:1.2.840.113556.1.4.1941:=CN=G1,DC=x))");
    expect(buildLookupFilter("(samAccountName={0})", "a", ["CN=G1,DC=x", "CN=G(2),DC=x"])).toBe(
      "(&(samAccountName=a)(|(memberOf:1.2.840.113556.1.4.1941:=CN=G1,DC=x)(memberOf:1.2.840.113556.1.4.1941:=CN=G\\282\\29,DC=x)))",
    );
  });

  it("refuses a template without {0} or that does not parse", () => {
    expect(() => checkFilterTemplate("(samAccountName=alice)")).toThrow(/must contain \{0\}/);
    expect(() => checkFilterTemplate("(&(samAccountName={0})")).toThrow(/not a valid LDAP filter/);
    expect(() => checkFilterTemplate("(&(samAccountName={0}))(x=1)")).toThrow(/not a valid LDAP filter/);
    expect(() => checkFilterTemplate(SEED)).not.toThrow();
  });
});
