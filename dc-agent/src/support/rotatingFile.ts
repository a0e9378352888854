import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import path from "node:path";

/**
 * A pino destination writing JSON lines to a file that is rotated by size: file → file.1 →
 * … → file.<keep>, the oldest removed. Synchronous, so the last lines before a crash are on
 * disk (an agent logs a few lines per password change, not thousands per second).
 */
export class RotatingFile {
  private fd: number;
  private size: number;

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    private readonly keep: number,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, "a", 0o640);
    this.size = fstatSync(this.fd).size;
  }

  write(line: string): void {
    const bytes = Buffer.from(line);
    if (this.size > 0 && this.size + bytes.length > this.maxBytes) this.rotate();
    writeSync(this.fd, bytes);
    this.size += bytes.length;
  }

  private rotate(): void {
    closeSync(this.fd);
    rmSync(`${this.file}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) if (existsSync(`${this.file}.${i}`)) renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
    renameSync(this.file, `${this.file}.1`);
    this.fd = openSync(this.file, "a", 0o640);
    this.size = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}
