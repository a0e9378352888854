import { request } from "node:https";

/** Calls the sandbox's own test endpoints (/sandbox/...), trusting the dev CA. */
export function sandboxControl(baseUrl: string, caPem: string | Buffer) {
  const call = (method: string, path: string, body?: unknown) =>
    new Promise<{ status: number; json: unknown }>((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        new URL(path, baseUrl),
        // A fresh connection per call (agent: false): Node 20's global agent keeps sockets alive, and
        // reusing one the sandbox closed at its 5 s keep-alive timeout fails as "socket hang up".
        { method, ca: caPem, agent: false, headers: payload ? { "content-type": "application/json", "content-length": payload.length } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = text;
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
        },
      );
      req.on("error", reject);
      req.end(payload);
    });
  return {
    /** True when the sandbox accepts this password for the user (the "sign-in check"). */
    signIn: async (userPrincipalName: string, password: string) => (await call("POST", "/sandbox/signin", { userPrincipalName, password })).status === 200,
    faults: async (plan: unknown) => {
      const r = await call("POST", "/sandbox/faults", plan);
      if (r.status !== 200) throw new Error(`sandbox refused the fault plan: ${JSON.stringify(r.json)}`);
    },
    stats: async () =>
      (await call("GET", "/sandbox/stats")).json as {
        counters: Record<string, number>;
        writeBudget: unknown;
        peakWritesInWindow: number;
        graphRequestsInFlight: number;
        batches: { requests: number; subRequests: number };
      },
    state: async () => (await call("GET", "/sandbox/state")).json,
  };
}
