/**
 * The benchmark's one table, as pure functions of measured rows: the ratios to
 * the baselines, the targets of issue 9 as checks, and the text rendering.
 */

export type Layout = 'mesh' | 'single';

type Command = 'renew-cold' | 'renew-none' | 'renew-third' | 'verify' | 'status' | 'plan' | 'deploy';
type Baseline = 'openssl' | 'x509' | 'ceiling-1' | 'ceiling-all';

const COMMAND_LABEL: Record<Command, string> = {
  'renew-cold': 'renew, every leaf new',
  'renew-none': 'renew, nothing due',
  'renew-third': 'renew, a third due',
  verify: 'verify',
  status: 'status',
  plan: 'plan',
  deploy: 'deploy to dir targets',
};

interface Measurement {
  seconds: number;
  rssMb: number;
  /** Leaves minted (renew) or targets delivered (deploy); absent where nothing is counted. */
  count?: number;
}

/** Renew's minting phase as the process itself timed it (TRELLIS_TIMINGS, packages/ci/src/timings.ts). */
export interface MintPhase {
  leaves: number;
  /**
   * The busiest worker thread's time deriving keys, filling templates, signing and encoding: the phase's length had it
   * written nothing.
   */
  seconds: number;
  /** The pool's wall time, first chunk posted to last back, its threads' leaf-file writes included. */
  wallSeconds: number;
  threads: number;
}

export interface CommandRow extends Measurement {
  layout: Layout;
  services: number;
  command: Command;
  /**
   * The same command on the same store with the tsc build (`node packages/ci/dist/main.js`), for the rows that change
   * nothing.
   */
  tscSeconds?: number;
  /** Renew's minting phase, where its worker pool minted. */
  mint?: MintPhase;
  /** Renew's phases as TRELLIS_TIMINGS printed them, in ms (kept in --json only). */
  phasesMs?: Record<string, number>;
}

export interface BaselineRow extends Measurement {
  baseline: Baseline;
  count: number;
  label: string;
  threads?: number;
}

interface Check {
  label: string;
  ok: boolean;
}

interface Ratios {
  openssl: number;
  x509: number;
  ceiling1: number;
  halfCeilingAll: number;
  /**
   * The minting phase's rate over half the every-core ceiling: issue 9's "≥ 50 % of the raw ceiling" read on the
   * engine.
   */
  mintHalfCeilingAll?: number;
}

export interface JudgedRow extends CommandRow {
  rate?: number;
  mintRate?: number;
  ratios?: Ratios;
  checks: Check[];
}

const rate = (m: Measurement): number | undefined => (m.count ? m.count / m.seconds : undefined);

/** Issue 9's targets, for the mesh of global + 20 regions at 10k services, on 2 cores. */
const TARGETS = {
  size: 10_000,
  seconds: { 'renew-cold': 3.5, 'renew-none': 1, verify: 2, status: 1, plan: 1 } as Partial<Record<Command, number>>,
  rssMb: 400,
  /** renew cold's minting phase must reach this fraction of the keygen + sign ceiling on every core. */
  ceilingShare: 0.5,
  /** 50k may cost at most this multiple of 10k. */
  linearSize: 50_000,
  linearFactor: 5.5,
};

/**
 * Each command row with its rate, its ratios to the (best measured) baselines and the checks that apply to it.
 */
export function judge(rows: CommandRow[], baselines: BaselineRow[], opts: { sampledDeploy: boolean }): JudgedRow[] {
  const best = (b: Baseline) => Math.max(...baselines.filter((x) => x.baseline === b).map((x) => rate(x) ?? 0));
  // Every core can always do what one does: on a loaded machine the threaded round can come out lower, and the bar must
  // not drop with it.
  const base = {
    openssl: best('openssl'),
    x509: best('x509'),
    ceiling1: best('ceiling-1'),
    ceilingAll: Math.max(best('ceiling-all'), best('ceiling-1')),
  };
  return rows.map((r) => {
    const rt = rate(r);
    const minting = r.command.startsWith('renew') && rt !== undefined;
    const mintRate = minting && r.mint && r.mint.seconds > 0 ? r.mint.leaves / r.mint.seconds : undefined;
    const ratios = minting
      ? {
          openssl: rt / base.openssl,
          x509: rt / base.x509,
          ceiling1: rt / base.ceiling1,
          halfCeilingAll: rt / (TARGETS.ceilingShare * base.ceilingAll),
          ...(mintRate !== undefined
            ? { mintHalfCeilingAll: mintRate / (TARGETS.ceilingShare * base.ceilingAll) }
            : {}),
        }
      : undefined;
    const checks: Check[] = [];
    if (r.layout === 'mesh' && r.services === TARGETS.size) {
      const limit = TARGETS.seconds[r.command];
      if (limit !== undefined) checks.push({ label: `≤ ${limit} s`, ok: r.seconds <= limit });
      // On the minting phase (the engine); a renew that timed none (too few leaves for the pool) is judged on the whole
      // process.
      if (r.command === 'renew-cold' && ratios) {
        const share = ratios.mintHalfCeilingAll;
        checks.push(
          share !== undefined
            ? { label: '≥ ½ ceiling (mint phase)', ok: share >= 1 }
            : { label: '≥ ½ ceiling', ok: ratios.halfCeilingAll >= 1 },
        );
      }
      checks.push({ label: `≤ ${TARGETS.rssMb} MB`, ok: r.rssMb <= TARGETS.rssMb });
    }
    // A sampled deploy delivers the same number of targets at every size: there is no growth to judge.
    if (r.services === TARGETS.linearSize && !(r.command === 'deploy' && opts.sampledDeploy)) {
      const small = rows.find((x) => x.layout === r.layout && x.services === TARGETS.size && x.command === r.command);
      if (small) {
        const factor = r.seconds / small.seconds;
        checks.push({
          label: `≤ ${TARGETS.linearFactor}× 10k (${factor.toFixed(1)}×)`,
          ok: factor <= TARGETS.linearFactor,
        });
      }
    }
    return {
      ...r,
      ...(rt !== undefined ? { rate: rt } : {}),
      ...(mintRate !== undefined ? { mintRate } : {}),
      ...(ratios ? { ratios } : {}),
      checks,
    };
  });
}

export const HEADER = [
  'layout',
  'services',
  'row',
  's',
  'leaves/s',
  'peak RSS MB',
  '× openssl',
  '× x509',
  '× ceiling 1 core',
  '× ½ ceiling all cores',
  'mint phase leaves/s',
  'mint × ½ ceiling all cores',
  's, tsc build',
  'target (scale)',
  'result',
];

const num = (v: number | undefined, digits: number): string => (v === undefined ? '—' : v.toFixed(digits));
/** Whole numbers from 100 up, three significant digits below, so a small rate or ratio never rounds to 0. */
const sig = (v: number | undefined): string =>
  v === undefined ? '—' : v >= 100 ? v.toFixed(0) : String(Number(v.toPrecision(3)));
const ratio = (v: number | undefined): string => (v === undefined ? '—' : `${sig(v)}×`);

export function sizeLabel(n: number): string {
  return n % 1000 === 0 ? `${n / 1000}k` : String(n);
}

/** One table: the baselines first, then every mesh's rows; columns padded, numbers right-aligned. */
export function renderTable(baselines: BaselineRow[], rows: JudgedRow[], ceilingThreads: number): string {
  const cells: string[][] = [HEADER];
  for (const b of baselines) {
    const label = b.baseline === 'ceiling-all' ? `${b.label} (${b.threads ?? ceilingThreads} threads)` : b.label;
    cells.push([
      'baseline',
      '—',
      `${label}, n=${b.count}`,
      num(b.seconds, 2),
      sig(rate(b)),
      num(b.rssMb, 0),
      '—',
      '—',
      '—',
      '—',
      '—',
      '—',
      '—',
      '—',
      '',
    ]);
  }
  for (const r of rows) {
    const target = r.checks.map((c) => `${c.ok ? '✓' : '✗'} ${c.label}`).join(' · ');
    const result = r.checks.length ? (r.checks.every((c) => c.ok) ? 'pass' : 'FAIL') : '';
    const what =
      r.command === 'deploy' && r.count !== undefined
        ? `${COMMAND_LABEL.deploy} (${r.count})`
        : COMMAND_LABEL[r.command];
    cells.push([
      r.layout,
      sizeLabel(r.services),
      what,
      num(r.seconds, 2),
      sig(r.rate),
      num(r.rssMb, 0),
      ratio(r.ratios?.openssl),
      ratio(r.ratios?.x509),
      ratio(r.ratios?.ceiling1),
      ratio(r.ratios?.halfCeilingAll),
      sig(r.mintRate),
      ratio(r.ratios?.mintHalfCeilingAll),
      num(r.tscSeconds, 2),
      target || '—',
      result,
    ]);
  }
  const width = HEADER.map((_, i) => Math.max(...cells.map((c) => [...c[i]!].length)));
  const left = new Set([0, 2, HEADER.length - 2, HEADER.length - 1]);
  const line = (c: string[]) =>
    c
      .map((v, i) => (left.has(i) ? v.padEnd(width[i]!) : v.padStart(width[i]!)))
      .join('  ')
      .trimEnd();
  return [line(cells[0]!), width.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
