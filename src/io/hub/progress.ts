/** A snapshot of a model download, handed to `onProgress` after every chunk. */
export interface DownloadProgress {
  repoId: string;
  /** File being fetched now. */
  file: string;
  fileBytes: number;
  fileTotal?: number;
  /** Bytes of all files to fetch, including bytes already on disk from an earlier partial download. */
  bytes: number;
  total?: number;
  /** Over the last few seconds of this run. */
  bytesPerSecond: number;
  etaSeconds?: number;
  done: boolean;
}

export type ProgressCallback = (p: DownloadProgress) => void;

const SPEED_WINDOW_MS = 5000;

/** Counts bytes across the files of one download and derives speed and ETA. */
export class ProgressTracker {
  private bytes = 0;
  private file = '';
  private fileBytes = 0;
  private fileTotal: number | undefined;
  private samples: { t: number; bytes: number }[] = [];

  constructor(
    private readonly repoId: string,
    private readonly total: number | undefined,
    private readonly onProgress: ProgressCallback | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {}

  startFile(file: string, fileTotal: number | undefined, alreadyOnDisk: number): void {
    this.file = file;
    this.fileTotal = fileTotal;
    this.fileBytes = alreadyOnDisk;
    this.bytes += alreadyOnDisk;
    this.emit(false);
  }

  /** Bytes received; negative when a partial file is thrown away and restarted. */
  advance(n: number): void {
    this.fileBytes += n;
    this.bytes += n;
    if (n > 0) this.sample(n);
    this.emit(false);
  }

  /** A file already in the cache counts as done without being fetched. */
  skip(size: number): void {
    this.bytes += size;
  }

  finish(): void {
    this.emit(true);
  }

  private transferred = 0;

  private sample(n: number): void {
    this.transferred += n;
    const t = this.now();
    this.samples.push({ t, bytes: this.transferred });
    while (this.samples.length > 2 && t - this.samples[0]!.t > SPEED_WINDOW_MS) this.samples.shift();
  }

  private speed(): number {
    if (this.samples.length < 2) return 0;
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = (last.t - first.t) / 1000;
    return dt > 0 ? (last.bytes - first.bytes) / dt : 0;
  }

  private emit(done: boolean): void {
    if (!this.onProgress) return;
    const bytesPerSecond = this.speed();
    const remaining = this.total !== undefined ? Math.max(0, this.total - this.bytes) : undefined;
    this.onProgress({
      repoId: this.repoId,
      file: this.file,
      fileBytes: this.fileBytes,
      fileTotal: this.fileTotal,
      bytes: this.bytes,
      total: this.total,
      bytesPerSecond,
      etaSeconds: done ? 0 : remaining !== undefined && bytesPerSecond > 0 ? remaining / bytesPerSecond : undefined,
      done,
    });
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** One line: bar, bytes, speed, ETA and the current file. */
export function formatProgress(p: DownloadProgress, width = 24): string {
  const frac = p.total ? Math.min(1, p.bytes / p.total) : undefined;
  const bar = frac === undefined ? '' : `[${'#'.repeat(Math.round(frac * width)).padEnd(width, '.')}] ${(frac * 100).toFixed(0).padStart(3)}% `;
  const amount = p.total !== undefined ? `${formatBytes(p.bytes)} / ${formatBytes(p.total)}` : formatBytes(p.bytes);
  const tail = p.done ? `done ${p.repoId}` : `ETA ${formatDuration(p.etaSeconds)}  ${p.file}`;
  return `${bar}${amount}  ${formatBytes(p.bytesPerSecond)}/s  ${tail}`;
}

const REDRAW_MS = 100;

/** A redrawing one-line progress bar on `stream`, or undefined when the stream is not a terminal. */
export function ttyProgressReporter(stream: NodeJS.WriteStream = process.stderr): ProgressCallback | undefined {
  if (!stream.isTTY) return undefined;
  let last = -Infinity;
  return (p) => {
    const t = performance.now();
    if (!p.done && t - last < REDRAW_MS) return;
    last = t;
    const cols = stream.columns || 100;
    stream.write(`\r${formatProgress(p).slice(0, cols - 1).padEnd(cols - 1)}${p.done ? '\n' : ''}`);
  };
}
