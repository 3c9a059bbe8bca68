/**
 * Progress of a long renew, on stderr (stdout stays the plan and the result):
 * a live bar on a terminal (cli-progress), one line every few seconds
 * elsewhere (CI logs), nothing on a quiet run.
 */
import cliProgress from 'cli-progress';
import { rawStderr } from '@trellis/core/shell';

export interface Progress {
  start(total: number): void;
  tick(n: number): void;
  stop(): void;
}

export type ProgressMode = 'bar' | 'lines' | 'none';

export const NO_PROGRESS: Progress = { start() {}, tick() {}, stop() {} };

/** Runs that mint fewer leaves finish before a bar would help; `--progress` shows it anyway. */
export const PROGRESS_MIN_LEAVES = 1000;

/** Which kind, from the flags and where stderr goes. */
export function progressMode(o: { quiet?: boolean; progress?: boolean; isTTY: boolean }): ProgressMode {
  if (o.quiet) return 'none';
  return o.isTTY ? 'bar' : 'lines';
}

interface Sink {
  write(s: string): unknown;
}

/**
 * One line every `everyMs` while leaves are signed, and one when done.
 * `now` is a parameter so the cadence is testable without waiting.
 */
export class LineProgress implements Progress {
  private total = 0;
  private done = 0;
  private began = 0;
  private last = 0;
  constructor(
    private readonly out: Sink,
    private readonly everyMs = 5000,
    private readonly now: () => number = () => performance.now(),
  ) {}
  start(total: number): void {
    this.total = total;
    this.began = this.last = this.now();
  }
  tick(n: number): void {
    this.done += n;
    const t = this.now();
    if (this.done < this.total && t - this.last >= this.everyMs) {
      this.last = t;
      this.line(t);
    }
  }
  stop(): void {
    if (this.total) this.line(this.now());
  }
  private line(t: number): void {
    const s = (t - this.began) / 1000;
    const rate = s > 0 ? Math.round(this.done / s) : 0;
    this.out.write(
      `renew: signed ${this.done}/${this.total} leaves (${Math.floor((100 * this.done) / this.total)}%) in ` +
        `${s.toFixed(1)} s, ${rate} leaves/s\n`,
    );
  }
}

/** The live bar: cli-progress on the terminal that stderr is. */
class BarProgress implements Progress {
  private bar: cliProgress.SingleBar;
  constructor(stream: NodeJS.WritableStream) {
    this.bar = new cliProgress.SingleBar(
      {
        stream,
        format: 'renew [{bar}] {percentage}% | {value}/{total} leaves | {eta_formatted} left',
        hideCursor: true,
        clearOnComplete: false,
      },
      cliProgress.Presets.shades_classic,
    );
  }
  start(total: number): void {
    this.bar.start(total, 0);
  }
  tick(n: number): void {
    this.bar.increment(n);
  }
  stop(): void {
    this.bar.stop();
  }
}

/**
 * The progress a renew of `total` leaves shows: none below PROGRESS_MIN_LEAVES
 * unless `forced`, none in mode 'none'.
 */
export function progressFor(
  mode: ProgressMode,
  total: number,
  forced: boolean,
  stream: NodeJS.WritableStream = process.stderr,
): Progress {
  if (mode === 'none' || total === 0 || (!forced && total < PROGRESS_MIN_LEAVES)) return NO_PROGRESS;
  // The bar's cursor control bypasses the output guard (runMain): it prints numbers only.
  return mode === 'bar' ? new BarProgress(stream === process.stderr ? rawStderr : stream) : new LineProgress(stream);
}
