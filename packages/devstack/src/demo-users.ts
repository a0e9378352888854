// No heavy imports here: the container's dev-init job uses these users without the launcher.

export interface SandboxUserSpec {
  id: string;
  userPrincipalName: string;
  mail: string;
  onPremisesImmutableId: string;
  accountEnabled?: boolean;
  onPremisesSyncEnabled?: boolean;
}

/** Users the sandbox tenant knows in dev and demos: user00001@contoso.example … */
export function demoUsers(count: number): SandboxUserSpec[] {
  return Array.from({ length: count }, (_, i) => {
    const n = String(i + 1).padStart(5, "0");
    const guid = Buffer.alloc(16);
    guid.writeUInt32BE(0x70770000 + i, 0);
    guid.write("pwsync-demo", 4, "latin1");
    return {
      id: `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`,
      userPrincipalName: `user${n}@contoso.example`,
      mail: `user${n}@contoso.example`,
      onPremisesImmutableId: guid.toString("base64"),
    };
  });
}
