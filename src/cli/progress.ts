// Progress for long work: a live bar with rate and ETA on a terminal, plain lines (at most every few
// seconds) when stderr is not a TTY, so logs stay readable.

export interface ProgressOptions {
  label: string;
  total: number;
  unit: string; // e.g. 'tok'
  stream?: NodeJS.WriteStream;
  minIntervalMs?: number; // plain-line interval when not a TTY (default 5000)
}

export class Progress {
  private readonly start = Date.now();
  private lastDraw = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** Report `done` units; `total` may be given when it becomes known late. */
  update(done: number, total?: number, extra = ''): void {
    if (total !== undefined) this.opts.total = total;
    const now = Date.now();
    const interval = this.tty ? 100 : (this.opts.minIntervalMs ?? 5000);
    if (now - this.lastDraw < interval && done < this.opts.total) return;
    this.lastDraw = now;
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 ? (this.opts.total - done) / rate : NaN;
    const pct = this.opts.total > 0 ? (100 * done) / this.opts.total : 100;
    const stats = `${done}/${this.opts.total} ${this.opts.unit} ${rate.toFixed(1)} ${this.opts.unit}/s ETA ${fmtDuration(eta)}${extra ? ` ${extra}` : ''}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((width * pct) / 100);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      this.stream.write(`\r${this.opts.label} [${bar}] ${pct.toFixed(0)}% ${stats}\x1b[K`);
    } else {
      this.stream.write(`${this.opts.label}: ${pct.toFixed(1)}% ${stats}\n`);
    }
  }

  done(): void {
    if (this.tty) this.stream.write('\n');
  }
}

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Progress of loading a model's weights (loadPretrained's onProgress), shown only from 256 MiB of float32 up. */
export function weightLoadProgress(dir: string): (done: number, total: number) => void {
  let bar: Progress | undefined;
  const mib = (values: number): number => Math.round((values * 4) / 2 ** 20);
  return (done, total) => {
    // NOTE: the last tensors (norm weights) are too small to move the MiB count; draw 100% once, at the end.
    if (mib(total) < 256 || (done < total && mib(done) >= mib(total))) return;
    bar ??= new Progress({ label: `loading ${dir}`, total: mib(total), unit: 'MiB' });
    bar.update(mib(done));
    if (done === total) bar.done();
  };
}
