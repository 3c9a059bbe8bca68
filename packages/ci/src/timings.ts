/**
 * TRELLIS_TIMINGS=1: renew prints one JSON line of its phase timings to
 * stderr at the end (stdout is unchanged), so the benchmark can read the
 * minting engine's rate apart from the process around it (BENCHMARKS.md).
 *
 *   {"trellis":"timings","command":"renew",
 *    "ms":{"start":…,"load":…,"plan":…,"keys":…,"procedures":…,"write":…,"ledger":…,"total":…},
 *    "mint":{"leaves":…,"threads":…,"wallMs":…,"signMs":[…],"filesMs":[…]}}
 *
 * `start` is node start-up and module loading (the process's time origin to the
 * handler); each other phase is the time since the one before it; `mint` is
 * the worker pool's part of `procedures`: its wall time from the first chunk
 * posted to the last one back, and per thread the time spent deriving keys,
 * filling templates, signing and PEM-encoding (`signMs`) and writing leaf files (`filesMs`).
 */
import { performance } from 'node:perf_hooks';

export interface MintTimings {
  leaves: number;
  threads: number;
  wallMs: number;
  signMs: number[];
  filesMs: number[];
}

export class Timings {
  readonly ms: Record<string, number>;
  mint: MintTimings | undefined;
  private last: number;
  private firstPosted = Infinity;
  private lastBack = -Infinity;

  constructor(readonly command: string) {
    this.last = performance.now();
    this.ms = { start: this.last };
  }

  /** Ends `phase` now: it took the time since the previous mark (a phase marked twice adds up). */
  mark(phase: string): void {
    const t = performance.now();
    this.ms[phase] = (this.ms[phase] ?? 0) + (t - this.last);
    this.last = t;
  }

  /**
   * A chunk of `leaves` signed by worker `thread` of `threads`, posted and back at these performance.now() of this
   * thread, with the worker's own times.
   */
  chunk(
    thread: number,
    threads: number,
    leaves: number,
    posted: number,
    back: number,
    signMs: number,
    filesMs: number,
  ): void {
    const m = (this.mint ??= {
      leaves: 0,
      threads,
      wallMs: 0,
      signMs: Array<number>(threads).fill(0),
      filesMs: Array<number>(threads).fill(0),
    });
    this.firstPosted = Math.min(this.firstPosted, posted);
    this.lastBack = Math.max(this.lastBack, back);
    m.leaves += leaves;
    m.wallMs = this.lastBack - this.firstPosted;
    m.signMs[thread] = m.signMs[thread]! + signMs;
    m.filesMs[thread] = m.filesMs[thread]! + filesMs;
  }

  /** The one line, rounded to 0.1 ms. */
  line(): string {
    const r = (v: number) => Math.round(v * 10) / 10;
    const ms = Object.fromEntries(Object.entries({ ...this.ms, total: performance.now() }).map(([k, v]) => [k, r(v)]));
    const mint = this.mint && {
      leaves: this.mint.leaves,
      threads: this.mint.threads,
      wallMs: r(this.mint.wallMs),
      signMs: this.mint.signMs.map(r),
      filesMs: this.mint.filesMs.map(r),
    };
    return `${JSON.stringify({ trellis: 'timings', command: this.command, ms, ...(mint ? { mint } : {}) })}\n`;
  }
}

/** A recorder when TRELLIS_TIMINGS=1, else nothing (every hook is `timings?.…`). */
export function timingsFor(command: string, env: NodeJS.ProcessEnv = process.env): Timings | undefined {
  return env.TRELLIS_TIMINGS === '1' ? new Timings(command) : undefined;
}
