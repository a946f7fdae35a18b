import path from 'node:path';
import { promises as fs } from 'node:fs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` while holding `lockPath`, a file created exclusively with our pid in it, so two tfvlm processes never
 * write the same blob at once. Waits while a live process holds it; takes over a lock whose process is gone.
 * (huggingface_hub locks `<etag>.lock` with flock, which node cannot take; tfvlm uses its own file beside it.)
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, pollMs = 100): Promise<T> {
  await fs.mkdir(path.dirname(lockPath), { recursive: true });
  for (;;) {
    try {
      await fs.writeFile(lockPath, String(process.pid), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number(await fs.readFile(lockPath, 'utf8').catch(() => ''));
    if (Number.isInteger(holder) && holder > 0 && !processIsAlive(holder)) {
      await fs.rm(lockPath, { force: true });
      continue;
    }
    await sleep(pollMs);
  }
  try {
    return await fn();
  } finally {
    await fs.rm(lockPath, { force: true });
  }
}
