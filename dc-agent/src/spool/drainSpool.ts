import { readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import path from "node:path";
import type { Logger } from "@pwsync/log";
import { decodeFrame, decodeSpoolEnvelope, spoolDrainOrder, wipe, type AckStatus, type DecodedFrame } from "../frame/index.js";
import type { SpoolOwnerCheck } from "./spoolOwner.js";
import { UnprotectUnavailableError, type Unprotect } from "./unprotect.js";

/**
 * Feeds the frames the filter spooled while the agent was unreachable through the same
 * handler as live frames, oldest first. A file is deleted once its frame is queued (or
 * dropped as out of scope); a file that cannot be read as a frame is renamed *.rejected
 * with a log line, so one bad file never blocks the ones after it. A file that could not be
 * decrypted (DPAPI helper missing or failing, empty answer) is kept, with an ALARM line, and
 * the drain stops until the next scan: that is our problem, not a corrupt frame.
 * Returns false when the handler asked to retry later (the directory is unreachable).
 */
export async function drainSpool(
  dir: string,
  unprotect: Unprotect,
  handle: (frame: DecodedFrame) => Promise<AckStatus>,
  logger: Logger,
  checkOwners: SpoolOwnerCheck,
): Promise<boolean> {
  let names: string[];
  try {
    names = spoolDrainOrder(readdirSync(dir));
  } catch {
    return true; // no spool folder yet: the filter never spooled
  }
  // Before any file is read: only the filter's account may have created it.
  const owners = await checkOwners(names.map((n) => path.join(dir, n)));
  for (const [i, name] of names.entries()) {
    const file = path.join(dir, name);
    const reject = (problem: string) => {
      logger.warn({ file: name, problem }, "spooled frame unreadable; renamed *.rejected");
      renameSync(file, `${file}.rejected`);
    };
    const owner = owners[i]!;
    if (!owner.trusted) {
      logger.error(
        { alarm: "spoolForeignFile", file: name, owner: owner.owner },
        "ALARM a spool file was not created by the filter (wrong owner): not drained, renamed *.rejected; someone with access to the spool folder may be planting changes",
      );
      renameSync(file, `${file}.rejected`);
      continue;
    }
    const envelope = decodeSpoolEnvelope(readFileSync(file));
    if (!envelope.ok) {
      reject(envelope.error.message);
      continue;
    }
    let frameBytes: Buffer;
    try {
      if (envelope.value.scope === "machine")
        logger.warn(
          { file: name, version: envelope.value.version },
          "spooled frame was written by an older filter in DPAPI machine scope (readable by any local account); draining it, upgrade the filter",
        );
      frameBytes = await unprotect(envelope.value.blob);
    } catch (err) {
      if (err instanceof UnprotectUnavailableError) {
        logger.error({ alarm: "spool-undecryptable", file: name, err: err.message }, "ALARM spooled frame could not be decrypted; kept for the next scan");
        return false;
      }
      reject((err as Error).message);
      continue;
    }
    const decoded = decodeFrame(frameBytes);
    wipe(frameBytes);
    if (!decoded.ok) {
      reject(`${decoded.error.code}: ${decoded.error.message}`);
      continue;
    }
    const status = await handle(decoded.value);
    if (status === "retryLater") return false;
    rmSync(file, { force: true });
    logger.info({ file: name, status }, "spooled frame drained");
  }
  return true;
}
