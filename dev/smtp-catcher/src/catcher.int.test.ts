import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import nodemailer from "nodemailer";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "@pwsync/testkit";
import { startSmtpCatcher, type SmtpCatcher } from "./catcher.js";
import { readEml } from "./eml.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "smtp-catcher-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function catcher(options: Partial<Parameters<typeof startSmtpCatcher>[0]> = {}): Promise<SmtpCatcher> {
  const started = await startSmtpCatcher({ port: 0, dir: tempDir(), ...options });
  cleanups.push(() => started.close());
  return started;
}

function transport(port: number, auth?: { user: string; pass: string }) {
  return nodemailer.createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true, ...(auth ? { auth } : {}) });
}

describe("smtp catcher", () => {
  it("writes each accepted message as a complete .eml file and lists it", async () => {
    const server = await catcher();
    const info = await transport(server.port).sendMail({
      from: "pwsync@example.test",
      to: "admin@example.test, second@example.test",
      subject: "Password sync failed for jdoe — Ünïcode",
      text: "Line one.\nA long line ".repeat(20),
    });
    expect(info.accepted).toEqual(["admin@example.test", "second@example.test"]);

    const [message] = server.messages();
    expect(server.messages()).toHaveLength(1);
    expect(message!.envelopeTo).toEqual(["admin@example.test", "second@example.test"]);
    expect(message!.subject).toBe("Password sync failed for jdoe — Ünïcode");
    const files = readdirSync(path.dirname(message!.file));
    expect(files).toEqual([path.basename(message!.file)]);

    const eml = readEml(message!.file);
    expect(eml.to).toBe("admin@example.test, second@example.test");
    expect(eml.messageId).toBe(info.messageId);
    expect(eml.text).toBe("Line one.\nA long line ".repeat(20));
  });

  it("requires the configured credentials when auth is set", async () => {
    const pass = randomBytes(12).toString("base64url");
    const server = await catcher({ auth: { user: "relay", pass } });
    await expect(transport(server.port, { user: "relay", pass: "wrong" }).sendMail({ from: "a@x.test", to: "b@x.test", text: "x" })).rejects.toMatchObject({
      responseCode: 535,
    });
    await expect(transport(server.port).sendMail({ from: "a@x.test", to: "b@x.test", text: "x" })).rejects.toMatchObject({ responseCode: 530 });
    await transport(server.port, { user: "relay", pass }).sendMail({ from: "a@x.test", to: "b@x.test", text: "x" });
    expect(server.messages().map((m) => m.authUser)).toEqual(["relay"]);
  });

  it("refuses a message larger than the limit and stores nothing", async () => {
    const server = await catcher({ maxMessageBytes: 2000 });
    await expect(transport(server.port).sendMail({ from: "a@x.test", to: "b@x.test", text: "y".repeat(5000) })).rejects.toMatchObject({ responseCode: 552 });
    expect(server.messages()).toEqual([]);
  });

  it("runs as a process and logs one JSON line per message", async () => {
    const dir = tempDir();
    const port = await freePort();
    const main = fileURLToPath(new URL("./main.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", main, "--port", String(port), "--dir", dir], { stdio: ["ignore", "pipe", "inherit"] });
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          child.once("exit", () => resolve());
          child.kill("SIGTERM");
        }),
    );
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;

    expect(await next()).toMatchObject({ msg: "smtp catcher listening", port });
    await transport(port).sendMail({ from: "a@x.test", to: "b@x.test", subject: "hello", text: "body" });
    const line = await next();
    expect(line).toMatchObject({ msg: "message caught", service: "smtp-catcher", to: ["b@x.test"], subject: "hello" });
    expect(readEml(line.file as string).text).toBe("body");
  });
});
