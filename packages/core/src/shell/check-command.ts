/**
 * `check`: the monitoring command both CLIs offer, defined once. Nagios plugin
 * exit codes (0 ok, 1 warning, 2 critical, 3 unknown) for this command only,
 * one summary line first, details after; `--metrics FILE` writes the same
 * facts for node-exporter's textfile collector. Needs no secret.
 */
import path from 'node:path';
import { isTrellisError } from '../model/errors.js';
import {
  DEFAULT_THRESHOLDS,
  NAGIOS,
  meshHealth,
  renderHealth,
  unknownLine,
  type Thresholds,
  type Window,
} from '../report/health.js';
import { loadMesh } from '../store/load-mesh.js';
import { healthMetrics } from '../report/metrics.js';
import { checkNowFlag, clock, ioFailure, withStore } from './shell.js';
import { writeOutFile } from '../store/out-path.js';
import { formatDuration, parseDuration } from '../model/time.js';

interface CheckArgs {
  store?: string;
  now?: string;
  nowAhead?: boolean;
  metrics?: string;
  rootWarn?: string;
  rootCrit?: string;
  intermediateWarn?: string;
  intermediateCrit?: string;
  rootCrlWarn?: string;
  rootCrlCrit?: string;
  leafWarn?: string;
  leafCrit?: string;
  crlWarn?: string;
  crlCrit?: string;
  gateOverdue?: string;
}
interface OptionBuilder {
  option(name: string, opts: { type: 'string'; describe: string }): OptionBuilder;
  example(cmd: string, what: string): OptionBuilder;
}

const d = formatDuration;
const FLAGS: [string, string][] = [
  ['root-warn', `warning when the root has less than this left (default ${d(DEFAULT_THRESHOLDS.root.warn)})`],
  ['root-crit', `critical when the root has less than this left (default ${d(DEFAULT_THRESHOLDS.root.crit)})`],
  [
    'intermediate-warn',
    `warning when an active or incoming intermediate has less than this left (default ` +
      `${d(DEFAULT_THRESHOLDS.intermediate.warn)})`,
  ],
  ['intermediate-crit', `critical under this (default ${d(DEFAULT_THRESHOLDS.intermediate.crit)})`],
  [
    'root-crl-warn',
    `warning when the root CRL's nextUpdate is closer than this (default ${d(DEFAULT_THRESHOLDS.rootCrl.warn)})`,
  ],
  ['root-crl-crit', `critical under this (default ${d(DEFAULT_THRESHOLDS.rootCrl.crit)})`],
  [
    'leaf-warn',
    'warning when a leaf has less than this left (default: past its renewal point, a third of its life left)',
  ],
  ['leaf-crit', 'critical when a leaf has less than this left (default: a sixth of its life)'],
  [
    'crl-warn',
    'warning when a scope CRL has less than this left (default: past half its life, where renew re-signs it)',
  ],
  ['crl-crit', 'critical when a scope CRL has less than this left (default: a sixth of its life)'],
  [
    'gate-overdue',
    `warning when an open rotation gate has waited longer than this for renew (default ` +
      `${d(DEFAULT_THRESHOLDS.gateOverdue)})`,
  ],
];

/** The thresholds the flags give, defaults for the rest; a flag that is not a duration is refused (UNKNOWN). */
function thresholdsFrom(a: CheckArgs): Thresholds {
  const dur = (v: string | undefined, flag: string) =>
    v === undefined ? undefined : parseDuration(v, { field: `--${flag}` }, 'usage');
  const win = (w: Window, warn: string | undefined, crit: string | undefined, flag: string): Window => ({
    warn: dur(warn, `${flag}-warn`) ?? w.warn,
    crit: dur(crit, `${flag}-crit`) ?? w.crit,
  });
  const opt = (warn: string | undefined, crit: string | undefined, flag: string): Partial<Window> => {
    const w = dur(warn, `${flag}-warn`);
    const c = dur(crit, `${flag}-crit`);
    return { ...(w !== undefined ? { warn: w } : {}), ...(c !== undefined ? { crit: c } : {}) };
  };
  return {
    root: win(DEFAULT_THRESHOLDS.root, a.rootWarn, a.rootCrit, 'root'),
    intermediate: win(DEFAULT_THRESHOLDS.intermediate, a.intermediateWarn, a.intermediateCrit, 'intermediate'),
    rootCrl: win(DEFAULT_THRESHOLDS.rootCrl, a.rootCrlWarn, a.rootCrlCrit, 'root-crl'),
    leaf: opt(a.leafWarn, a.leafCrit, 'leaf'),
    crl: opt(a.crlWarn, a.crlCrit, 'crl'),
    gateOverdue: dur(a.gateOverdue, 'gate-overdue') ?? DEFAULT_THRESHOLDS.gateOverdue,
  };
}

/** One line for what went wrong, naming the file: what UNKNOWN prints. */
function describeFailure(e: unknown): string {
  if (isTrellisError(e)) return e.message.split('\n')[0]!;
  const io = ioFailure(e);
  if (io) return io.split('\n')[0]!;
  const err = e as NodeJS.ErrnoException;
  return err?.code && err.path ? `${err.path}: ${err.code} (${err.message.split(':')[0]})` : String(err?.message ?? e);
}

/**
 * Writes a textfile-collector file atomically: a temporary file in the same
 * directory, fsynced, renamed over the old one. A reader sees the old file or
 * the new, never half; a failed write leaves the old one as it was. Under the
 * output-path policy (out-path.ts): never through a link, never onto a device.
 */
export function writeMetricsFile(file: string, text: string, store?: string): void {
  writeOutFile(file, text, { flag: '--metrics', store });
}

export const checkCommand = {
  command: 'check',
  describe:
    'Monitoring check: every certificate, CRL, pending ceremony and rotation gate against thresholds; Nagios ' +
    'exit codes (0 ok, 1 warning, 2 critical, 3 unknown)',
  builder: (y: OptionBuilder) => {
    let b = y.option('metrics', {
      type: 'string',
      describe:
        'also write the node-exporter textfile metrics to FILE, atomically (e.g. ' +
        '/var/lib/prometheus/node-exporter/trellis.prom)',
    });
    for (const [flag, describe] of FLAGS) b = b.option(flag, { type: 'string', describe });
    return b
      .example('$0 check', 'from cron, a systemd timer or a monitoring agent: pages on exit 1 and 2')
      .example(
        '$0 check --intermediate-crit 45d --metrics /var/lib/prometheus/node-exporter/trellis.prom',
        'stricter, and feed Prometheus',
      );
  },
  handler: async (a: CheckArgs): Promise<void> => {
    const unknown = (why: string) => {
      process.stdout.write(`${unknownLine(why)}\n`);
      process.exitCode = NAGIOS.unknown;
    };
    let report: string;
    let code: number;
    let metrics: string | undefined;
    let storeDir: string | undefined;
    try {
      const t = thresholdsFrom(a);
      checkNowFlag(a, true);
      const now = clock(a.now);
      const mesh = await withStore(a.store, async (store) => loadMesh(store));
      storeDir = mesh.dir;
      const h = await meshHealth(mesh, now, t);
      report = renderHealth(h, t);
      code = NAGIOS[h.level];
      if (a.metrics) metrics = healthMetrics(h, mesh.config);
    } catch (e) {
      return unknown(describeFailure(e));
    }
    if (a.metrics && metrics !== undefined) {
      try {
        writeMetricsFile(a.metrics, metrics, storeDir);
      } catch (e) {
        // The verdict stands in the details; the monitoring that reads the file is blind, which is its own alarm.
        const [first, ...rest] = report.split('\n');
        const checks = first!.replace(/^TRELLIS /, '').split(' | ')[0];
        const why =
          `cannot write the metrics file ${path.resolve(a.metrics)}: ${describeFailure(e)}; ` +
          `the previous file is left as it was (checks: ${checks})`;
        process.stdout.write(`${unknownLine(why)}\n${rest.join('\n')}`);
        process.exitCode = NAGIOS.unknown;
        return;
      }
    }
    process.stdout.write(report);
    process.exitCode = code;
  },
};
