import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ingestConfigSchema } from "@pwsync/ingest";
import { resolverConfigSchema } from "@pwsync/resolver";
import { executorConfigSchema } from "@pwsync/reset-executor";
import { notifierFileConfigSchema } from "@pwsync/notifier";
// @pwsync/admin exports nothing yet; its schema module is imported by path.
import { adminConfigSchema } from "../../services/admin/src/config.js";
import { telemetryConfigSchema } from "@pwsync/telemetry";
import { kustomizeBuild, type Manifest } from "./kustomize.js";
import entryPoints from "../../scripts/entry-points.json" with { type: "json" };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const overlays = ["dev", "prod"] as const;
const rendered = Object.fromEntries(overlays.map((o) => [o, kustomizeBuild(path.join(root, "k8s/overlays", o), root)]));
const required = parseYaml(readFileSync(path.join(root, "k8s/required-secrets.yaml"), "utf8")) as Record<string, { keys: string[]; overlays: string[] }>;

type Pod = {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown>;
  automountServiceAccountToken?: boolean;
};
type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } } }>;
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
  securityContext?: Record<string, unknown>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  ports?: Array<{ containerPort: number }>;
};
type Probe = { exec?: { command: string[] }; grpc?: { port: number }; tcpSocket?: unknown; httpGet?: unknown };
type Volume = {
  name: string;
  secret?: { secretName: string; items?: Array<{ key: string }> };
  configMap?: { name: string; items?: Array<{ key: string }> };
  emptyDir?: unknown;
  persistentVolumeClaim?: unknown;
};

function podOf(m: Manifest): Pod | undefined {
  const spec = m.spec as { template?: { spec: Pod } } | undefined;
  return spec?.template?.spec;
}
const workloads = (ms: Manifest[]) => ms.filter((m) => ["Deployment", "StatefulSet", "Job"].includes(m.kind));
const PWSYNC_SERVICES = ["ingest", "resolver", "reset-executor", "notifier", "admin"];

async function modelFor(m: Manifest): Promise<(new (d: unknown) => { validate(): void }) | undefined> {
  const [group, version] = m.apiVersion.includes("/") ? m.apiVersion.split("/") : ["", m.apiVersion];
  const modulePath = group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`;
  try {
    const mod = (await import(modulePath)) as Record<string, new (d: unknown) => { validate(): void }>;
    return mod[m.kind];
  } catch {
    return undefined;
  }
}

describe.each(overlays)("k8s overlay %s", (overlay) => {
  const { manifests, unsupported } = rendered[overlay]!;

  it("renders with only the kustomize features the test renderer implements exactly", () => {
    expect(unsupported).toEqual([]);
    expect(manifests.length).toBeGreaterThan(20);
    const keys = manifests.map((m) => `${m.kind}/${m.metadata.name}`);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  });

  it("validates every built-in object against the Kubernetes schemas in kubernetes-models 5.1.0", async () => {
    const crds: string[] = [];
    for (const m of manifests) {
      const Model = await modelFor(m);
      if (!Model) {
        crds.push(`${m.apiVersion}/${m.kind}`);
        continue;
      }
      expect(() => new Model(m).validate(), `${m.kind}/${m.metadata.name}`).not.toThrow();
    }
    // Only the CloudNativePG Cluster is a custom resource; it is checked field by field below.
    expect(crds).toEqual(overlay === "prod" ? ["postgresql.cnpg.io/v1/Cluster"] : []);
  });

  it("puts everything in the pwsync namespace", () => {
    for (const m of manifests) if (m.kind !== "Namespace") expect(m.metadata.namespace, `${m.kind}/${m.metadata.name}`).toBe("pwsync");
  });

  it("gives every workload limits, requests, probes and a restricted securityContext", () => {
    for (const w of workloads(manifests)) {
      const pod = podOf(w)!;
      expect(pod.automountServiceAccountToken, w.metadata.name).toBe(false);
      expect(pod.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
      for (const c of pod.containers) {
        const where = `${w.kind}/${w.metadata.name}/${c.name}`;
        expect(c.resources?.limits?.memory, where).toBeTruthy();
        expect(c.resources?.requests?.cpu, where).toBeTruthy();
        expect(c.securityContext, where).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
        if (w.kind !== "Job") {
          expect(c.readinessProbe, where).toBeTruthy();
          expect(c.livenessProbe, where).toBeTruthy();
        }
        // The image runs compiled JavaScript and writes nothing locally: no writable /tmp.
        if (c.image.includes("pwsync")) expect(c.volumeMounts?.some((v) => v.mountPath === "/tmp") ?? false, where).toBe(false);
      }
    }
  });

  it("probes pwsync services through gRPC health on the port their config serves it", () => {
    const config = parseYaml(
      (manifests.find((m) => m.kind === "ConfigMap" && m.metadata.name === "pwsync-config")!.data as Record<string, string>)["pwsync.yaml"]!,
    ) as Record<string, any>;
    const healthPorts: Record<string, number> = {
      ingest: config.ingest.port,
      admin: config.admin.port,
      resolver: config.resolver.healthPort,
      "reset-executor": config.executor.healthPort,
      notifier: config.notifier.health.port,
    };
    for (const name of PWSYNC_SERVICES) {
      const c = podOf(manifests.find((m) => m.kind === "Deployment" && m.metadata.name === name)!)!.containers[0]!;
      // The entry points scripts/test-containers.sh runs under compose (dist/<name>.js).
      expect(c.args, name).toEqual([`dist/${name}.js`]);
      expect(Object.keys(entryPoints.production), name).toContain(name);
      for (const probe of [c.startupProbe, c.readinessProbe, c.livenessProbe]) {
        const port = probe?.grpc?.port ?? Number(probe?.exec?.command[2]);
        expect(port, name).toBe(healthPorts[name]);
        if (probe?.exec) expect(probe.exec.command.slice(0, 2)).toEqual(["node", "deploy/container/healthcheck.mjs"]);
      }
      // Workers bind health to loopback (services/*/src/main.ts), so only an exec probe reaches it;
      // the notifier binds notifier.health.host, so the kubelet's native gRPC probe works.
      if (name === "resolver" || name === "reset-executor") expect(c.readinessProbe?.exec).toBeTruthy();
      if (name === "notifier") expect(config.notifier.health.host).toBe("0.0.0.0");
    }
  });

  it("has a PodDisruptionBudget for every Deployment with more than one replica and HPAs that target real Deployments", () => {
    const deployments = manifests.filter((m) => m.kind === "Deployment");
    for (const d of deployments.filter((d) => ((d.spec as { replicas: number }).replicas ?? 1) > 1)) {
      expect(
        manifests.some((m) => m.kind === "PodDisruptionBudget" && m.metadata.name === d.metadata.name),
        d.metadata.name,
      ).toBe(true);
    }
    for (const hpa of manifests.filter((m) => m.kind === "HorizontalPodAutoscaler")) {
      const target = (hpa.spec as { scaleTargetRef: { kind: string; name: string } }).scaleTargetRef;
      expect(
        deployments.some((d) => d.metadata.name === target.name),
        hpa.metadata.name,
      ).toBe(true);
    }
  });

  it("references only ConfigMaps it renders and Secrets (with keys) declared in k8s/required-secrets.yaml", () => {
    const configMaps = new Set(manifests.filter((m) => m.kind === "ConfigMap").map((m) => m.metadata.name));
    for (const w of workloads(manifests)) {
      const pod = podOf(w)!;
      for (const v of pod.volumes ?? []) {
        if (v.configMap) expect(configMaps.has(v.configMap.name), `${w.metadata.name}: ConfigMap ${v.configMap.name}`).toBe(true);
        if (v.secret) {
          const declared = required[v.secret.secretName];
          expect(declared?.overlays, `${w.metadata.name}: Secret ${v.secret.secretName}`).toContain(overlay);
          for (const item of v.secret.items ?? []) expect(declared!.keys, `${v.secret.secretName}.${item.key}`).toContain(item.key);
        }
      }
      for (const c of pod.containers) {
        const mounted = new Set((c.volumeMounts ?? []).map((m) => m.name));
        const claims = ((w.spec as { volumeClaimTemplates?: Array<{ metadata: { name: string } }> }).volumeClaimTemplates ?? []).map((t) => t.metadata.name);
        for (const name of mounted) expect(pod.volumes?.some((v) => v.name === name) || claims.includes(name), `${w.metadata.name}: volume ${name}`).toBe(true);
        // FILE__ variables must point into a mounted volume (env-files.mjs exits 2 otherwise).
        for (const e of c.env ?? []) {
          if (e.name.startsWith("FILE__"))
            expect(
              (c.volumeMounts ?? []).some((m) => e.value!.startsWith(`${m.mountPath}/`)),
              `${w.metadata.name}: ${e.name}`,
            ).toBe(true);
          if (e.valueFrom?.secretKeyRef) expect(required[e.valueFrom.secretKeyRef.name]?.keys).toContain(e.valueFrom.secretKeyRef.key);
        }
      }
    }
  });

  it("ships a pwsync.yaml that every service's own config schema accepts (placeholder secrets)", () => {
    const cm = manifests.find((m) => m.kind === "ConfigMap" && m.metadata.name === "pwsync-config")!;
    const file = parseYaml((cm.data as Record<string, string>)["pwsync.yaml"]!) as Record<string, any>;
    // What the mounted Secrets add through FILE__ variables.
    const withSecrets = {
      ...file,
      database: { ...file.database, url: "postgres://pwsync:placeholder@pwsync-db-rw:5432/pwsync" },
      graph: { ...file.graph, clientSecret: "placeholder" },
      ingest: { ...file.ingest, acceptedKeyIds: ["0123456789abcdef"] },
    };
    for (const [name, schema] of Object.entries({
      ingest: ingestConfigSchema,
      resolver: resolverConfigSchema,
      executor: executorConfigSchema,
      notifier: notifierFileConfigSchema,
      admin: adminConfigSchema,
      telemetry: telemetryConfigSchema,
    })) {
      const parsed = schema.safeParse(withSecrets);
      expect(parsed.success ? [] : parsed.error.issues, name).toEqual([]);
    }
    expect(JSON.stringify(file)).not.toMatch(/clientSecret|password|BEGIN [A-Z ]*PRIVATE KEY/i);
    // Files the config names are mounted in the Deployments that read them.
    const mountsOf = (name: string) =>
      podOf(manifests.find((m) => m.kind === "Deployment" && m.metadata.name === name)!)!.containers[0]!.volumeMounts!.map((m) => m.mountPath);
    const under = (file: string, name: string) => mountsOf(name).some((p) => file.startsWith(`${p}/`) || file === p);
    for (const f of Object.values(file.ingest.tls) as string[]) expect(under(f, "ingest"), f).toBe(true);
    for (const f of Object.values(file.admin.tls) as string[]) expect(under(f, "admin"), f).toBe(true);
    expect(under(file.executor.keysDir, "reset-executor")).toBe(true);
    if (file.graph.caFile) for (const s of ["resolver", "reset-executor", "admin"]) expect(under(file.graph.caFile, s), `${s} ${file.graph.caFile}`).toBe(true);
  });

  it("denies by default and lets in only ingest and admin (and, in dev, the stand-ins from the services)", () => {
    const policies = manifests.filter((m) => m.kind === "NetworkPolicy") as Array<
      Manifest & { spec: { podSelector: { matchLabels?: Record<string, string> }; policyTypes: string[]; ingress?: Array<{ from?: unknown[] }> } }
    >;
    const deny = policies.find((p) => p.metadata.name === "default-deny")!;
    expect(deny.spec).toMatchObject({ podSelector: {}, policyTypes: ["Ingress", "Egress"], ingress: [], egress: [] });
    for (const p of policies) {
      for (const rule of p.spec.ingress ?? []) expect(rule.from?.length ?? 0, `${p.metadata.name} allows ingress from anywhere`).toBeGreaterThan(0);
    }
    const ipOpen = policies
      .filter((p) => (p.spec.ingress ?? []).some((r) => JSON.stringify(r.from).includes("ipBlock")))
      .map((p) => p.metadata.name)
      .sort();
    expect(ipOpen).toEqual(["admin", "ingest"]);
    for (const worker of ["resolver", "reset-executor", "notifier"]) expect(policies.find((p) => p.metadata.name === worker)?.spec.ingress).toEqual([]);
    // Every pod that talks to Postgres carries the label the database policy admits.
    for (const w of workloads(manifests).filter((w) =>
      [...PWSYNC_SERVICES, "migrate"].includes((w.metadata.labels as Record<string, string> | undefined)?.["app.kubernetes.io/name"] ?? ""),
    )) {
      expect((w.spec as any).template.metadata.labels["pwsync.io/database-client"], w.metadata.name).toBe("true");
    }
  });
});

describe("k8s overlays differ where they must", () => {
  const has = (o: (typeof overlays)[number], kind: string, name: string) => rendered[o]!.manifests.some((m) => m.kind === kind && m.metadata.name === name);

  it("runs the sandbox tenant, SMTP catcher and in-cluster Postgres only in dev", () => {
    for (const name of ["sandbox-tenant", "smtp-catcher"]) {
      expect(has("dev", "Deployment", name)).toBe(true);
      expect(has("prod", "Deployment", name)).toBe(false);
    }
    expect(has("dev", "StatefulSet", "postgres")).toBe(true);
    expect(has("prod", "StatefulSet", "postgres")).toBe(false);
    const prodText = JSON.stringify(rendered.prod!.manifests);
    expect(prodText).not.toContain("sandbox");
  });

  it("runs compiled entry points: the production image's for pwsync, the dev image's for the stand-ins", () => {
    for (const o of overlays) {
      const job = rendered[o]!.manifests.find((m) => m.kind === "Job" && m.metadata.name === "pwsync-migrate")!;
      expect(podOf(job)!.containers[0]!.args, o).toEqual(["dist/migrate.js"]);
      expect(Object.keys(entryPoints.production)).toContain("migrate");
    }
    for (const name of ["sandbox-tenant", "smtp-catcher"] as const) {
      const c = podOf(rendered.dev!.manifests.find((m) => m.kind === "Deployment" && m.metadata.name === name)!)!.containers[0]!;
      expect(c.args, name).toEqual([`dist-dev/${name}.js`]);
      expect(Object.keys(entryPoints.dev)).toContain(name);
      expect(c.image, name).toBe("pwsync-dev:local");
    }
    for (const o of overlays) {
      for (const w of workloads(rendered[o]!.manifests)) {
        for (const c of podOf(w)!.containers) if (/pwsync/.test(c.image)) expect(c.args?.[0], `${o} ${w.metadata.name}`).toMatch(/^dist(-dev)?\/[a-z-]+\.js$/);
      }
    }
  });

  it("gives prod an operator-managed Postgres whose app Secret is the one the services mount", () => {
    const cluster = rendered.prod!.manifests.find((m) => m.kind === "Cluster")! as Manifest & { spec: any };
    expect(cluster.apiVersion).toBe("postgresql.cnpg.io/v1");
    expect(cluster.spec.instances).toBeGreaterThanOrEqual(3);
    expect(cluster.spec.bootstrap.initdb).toMatchObject({ database: "pwsync", owner: "pwsync" });
    expect(cluster.spec.storage.size).toMatch(/^\d+Gi$/);
    // CloudNativePG names the application Secret <cluster>-app and labels pods via inheritedMetadata.
    expect(`${cluster.metadata.name}-app`).toBe("pwsync-db-app");
    expect(cluster.spec.inheritedMetadata.labels["pwsync.io/role"]).toBe("database");
  });

  it("keeps the base collector config identical to deploy/otel-collector.yaml", () => {
    const cm = rendered.prod!.manifests.find((m) => m.kind === "ConfigMap" && m.metadata.name === "otel-collector")!;
    expect((cm.data as Record<string, string>)["config.yaml"]).toBe(readFileSync(path.join(root, "deploy/otel-collector.yaml"), "utf8"));
  });
});
