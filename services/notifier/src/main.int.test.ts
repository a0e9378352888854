import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { create, toJson } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { appendToStream, openEventLog, readStream } from "@pwsync/eventlog";
import { events, ResetFailureReason } from "@pwsync/proto";
import { readEml, startSmtpCatcher } from "@pwsync/smtp-catcher";
import { createTestDatabase, eventually, freePort } from "@pwsync/testkit";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("notifier process", () => {
  it("starts from PWSYNC_ settings, emails the admin about a failure, and stops on SIGTERM", async () => {
    const url = await createTestDatabase("notifier_main");
    const eventLog = await openEventLog(url);
    cleanups.push(() => eventLog.close());
    const dir = mkdtempSync(path.join(tmpdir(), "notifier-main-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const catcher = await startSmtpCatcher({ port: 0, dir });
    cleanups.push(() => catcher.close());
    const healthPort = await freePort();

    const main = fileURLToPath(new URL("./main.ts", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", main], {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        PWSYNC_CONFIG: "",
        PWSYNC_DATABASE__URL: url,
        PWSYNC_NOTIFIER__SMTP__HOST: "127.0.0.1",
        PWSYNC_NOTIFIER__SMTP__PORT: String(catcher.port),
        PWSYNC_NOTIFIER__SMTP__START_TLS: "off",
        PWSYNC_NOTIFIER__SMTP__FROM: "pwsync@corp.example",
        PWSYNC_NOTIFIER__ADMIN_RECIPIENTS: '["ops@corp.example"]',
        PWSYNC_NOTIFIER__HEALTH__HOST: "127.0.0.1",
        PWSYNC_NOTIFIER__HEALTH__PORT: String(healthPort),
      },
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    for (;;) {
      const line = JSON.parse((await lines.next()).value as string) as { event?: string; healthPort?: number };
      if (line.event === "ready") {
        expect(line.healthPort).toBe(healthPort);
        break;
      }
    }

    const changeId = randomUUID();
    const streamId = `change-${changeId}`;
    await appendToStream(
      eventLog.db,
      streamId,
      [
        {
          type: "ChangeCaptured",
          data: toJson(events.ChangeCaptured, create(events.ChangeCaptured, { changeId, accountName: "mroe", domainController: "DC02.corp.example" })),
        },
        {
          type: "ResetFailed",
          data: toJson(
            events.ResetFailed,
            create(events.ResetFailed, { changeId, reason: ResetFailureReason.FORBIDDEN, detail: "Graph 403 Authorization_RequestDenied" }),
          ),
        },
      ],
      { expectedVersion: "no_stream" },
    );
    await eventually("NotificationSent", async () => (await readStream(eventLog.db, streamId)).some((e) => e.type === "NotificationSent"));
    const [message] = catcher.messages();
    expect(readEml(message!.file)).toMatchObject({
      to: "ops@corp.example",
      subject: "Password sync failed for mroe: pwsync's Entra application is not allowed to set this user's password",
    });

    child.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
