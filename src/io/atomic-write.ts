// Files and folders written whole or not at all: the content goes to a temporary sibling
// (`<name>.tmp-<pid>-<time>`), is fsynced, and is renamed into place; the parent folder is fsynced so
// the rename survives a crash too. A process killed mid-write leaves only a temporary, which
// sweepStaleTemporaries removes once its process is gone.
import fs from 'node:fs';
import path from 'node:path';

const TEMPORARY = /\.tmp-(\d+)-\d+$/;

/** A temporary sibling of `target` owned by this process. */
export function temporaryPathFor(target: string): string {
  return `${target}.tmp-${process.pid}-${Date.now()}`;
}

/** fsync of a file or folder by path: its data reaches the disk, whichever descriptor wrote it. */
export function fsyncPath(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync of a folder, so a rename or a new entry in it is on disk. */
export function fsyncFolder(dir: string): void {
  fsyncPath(dir);
}

/** Writes `file` in one piece: a temporary beside it, fsynced, then renamed over it. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = temporaryPathFor(file);
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncFolder(path.dirname(path.resolve(file)));
}

/** Copies a file in one piece (an interrupted copy never leaves a truncated `to`). */
export function copyFileAtomic(from: string, to: string): void {
  writeFileAtomic(to, fs.readFileSync(from));
}

/**
 * Writes the folder `dir` in one piece: `fill` writes into a temporary sibling folder, every file in it
 * is fsynced, and it is renamed to `dir` (an existing `dir` is replaced). Until the rename, `dir` is as
 * it was; after it, `dir` is complete.
 */
export function writeFolderAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tmp = temporaryPathFor(dir);
  try {
    fs.mkdirSync(tmp);
    fill(tmp);
    for (const name of fs.readdirSync(tmp)) {
      const p = path.join(tmp, name);
      if (fs.statSync(p).isFile()) fsyncPath(p);
    }
    fsyncFolder(tmp);
    if (fs.existsSync(dir)) {
      // rename cannot replace a folder that has files: move the old one aside first, then drop it.
      const old = temporaryPathFor(`${dir}.replaced`);
      fs.renameSync(dir, old);
      fs.renameSync(tmp, dir);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, dir);
    }
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  fsyncFolder(parent);
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the temporaries in `dir` (files or folders) whose writing process is gone; returns their names. */
export function sweepStaleTemporaries(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const swept: string[] = [];
  for (const name of names) {
    const m = TEMPORARY.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    swept.push(name);
  }
  return swept;
}
