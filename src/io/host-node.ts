// The Node host: node:fs, exactly the calls the loaders made before the host existed, so errors
// (fs's own, with their `code`) and speed are Node's.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fsyncFolder, temporaryPathFor } from './atomic-write.ts';
import type { FileSink, Host, HostStat, RandomAccessFile } from './host.ts';

/** One readSync/writeSync moves at most this much (node caps a single call near 2 GiB). */
const IO_CHUNK = 1 << 30;

class NodeFile implements RandomAccessFile {
  private fd: number | undefined;
  readonly size: number;

  constructor(file: string) {
    const fd = fs.openSync(file, 'r');
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw Object.assign(new Error(`EISDIR: not a regular file: ${file}`), { code: 'EISDIR' });
      this.size = st.size;
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    this.fd = fd;
  }

  read(dst: Uint8Array, position: number): number {
    if (this.fd === undefined) throw new Error('file is closed');
    return fs.readSync(this.fd, dst, 0, Math.min(dst.length, IO_CHUNK), position);
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** A temporary sibling, fsynced and renamed into place on commit (atomic-write.ts's recipe). */
class NodeSink implements FileSink {
  private readonly tmp: string;
  private fd: number | undefined;
  private position = 0;

  constructor(private readonly file: string) {
    this.tmp = temporaryPathFor(file);
    this.fd = fs.openSync(this.tmp, 'w');
  }

  write(buf: Uint8Array): void {
    let done = 0;
    while (done < buf.length) {
      done += fs.writeSync(this.fd!, buf, done, Math.min(buf.length - done, IO_CHUNK), this.position + done);
    }
    this.position += buf.length;
  }

  commit(): void {
    fs.fsyncSync(this.fd!);
    fs.closeSync(this.fd!);
    this.fd = undefined;
    fs.renameSync(this.tmp, this.file);
    fsyncFolder(path.dirname(path.resolve(this.file)));
  }

  abort(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.tmp, { force: true });
  }
}

export const nodeHost: Host = {
  name: 'node',
  join: (dir, ...names) => path.join(dir, ...names),
  dirname: (location) => path.dirname(location),
  resolve: (base, location) => path.resolve(base, location),
  cwd: () => process.cwd(),
  fromUrl: (url) => fileURLToPath(url),
  stat(location): HostStat | undefined {
    let st: fs.Stats;
    try {
      st = fs.statSync(location);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw e;
    }
    return { kind: st.isDirectory() ? 'directory' : 'file', size: st.size };
  },
  exists: (location) => fs.existsSync(location),
  readBytes: (location) => fs.readFileSync(location),
  readText: (location) => fs.readFileSync(location, 'utf8'),
  readTextAsync: (location) => fs.promises.readFile(location, 'utf8'),
  list: (dir) => fs.readdirSync(dir),
  open: (location) => new NodeFile(location),
  create: (location) => new NodeSink(location),
  async readPackageAsset(specifier) {
    return fs.readFileSync(createRequire(import.meta.url).resolve(specifier)) as Uint8Array<ArrayBuffer>;
  },
};
