import { Agent, request as httpsRequest } from "node:https";
import type { Context, Middleware } from "@microsoft/microsoft-graph-client";

function headersToRecord(headers: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!headers) return out;
  if (headers instanceof Headers) {
    headers.forEach((value, key) => (out[key] = value));
  } else if (Array.isArray(headers)) {
    for (const [key, value] of headers as [string, string][]) out[key] = value;
  } else {
    for (const [key, value] of Object.entries(headers as Record<string, unknown>)) {
      if (value !== undefined) out[key] = String(value);
    }
  }
  return out;
}

/**
 * Last link of the Graph middleware chain when an extra CA must be trusted (the sandbox tenant's
 * dev CA): Node 20's global fetch takes no per-request CA, so this sends the request with node:https.
 */
export class NodeHttpsHandler implements Middleware {
  private readonly agent: Agent;

  constructor(ca: string) {
    this.agent = new Agent({ ca, keepAlive: true });
  }

  execute(context: Context): Promise<void> {
    const url = typeof context.request === "string" ? context.request : context.request.url;
    const options = context.options ?? {};
    const body = options.body as string | Buffer | Uint8Array | undefined | null;
    const signal = (options as { signal?: AbortSignal }).signal ?? undefined;
    return new Promise((resolve, reject) => {
      // An aborted request is never sent (node:https refuses to start with an aborted signal).
      if (signal?.aborted) {
        reject(signal.reason ?? new Error("aborted"));
        return;
      }
      const req = httpsRequest(url, { method: options.method ?? "GET", headers: headersToRecord(options.headers), agent: this.agent, signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const headers = new Headers();
          for (const [key, value] of Object.entries(res.headers)) {
            if (Array.isArray(value)) value.forEach((v) => headers.append(key, v));
            else if (value !== undefined) headers.set(key, value);
          }
          const status = res.statusCode ?? 0;
          const payload = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          context.response = new Response(payload, { status, statusText: res.statusMessage ?? "", headers });
          resolve();
        });
      });
      req.on("error", reject);
      if (body !== undefined && body !== null) req.write(body);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
