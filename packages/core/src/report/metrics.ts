/**
 * The node-exporter textfile format (Prometheus text exposition 0.0.4) for
 * `check --metrics` and `renew --metrics`. Every time is an absolute unix
 * timestamp in seconds, so alert rules compare against `time()` and a stale
 * file never looks healthier than it was. Pure: the shell writes the text.
 */
import type { MeshHealth } from './health.js';
import { NAGIOS } from './health.js';

type Labels = Record<string, string>;
interface Family {
  name: string;
  help: string;
  samples: { labels: Labels; value: number }[];
}

/** Label values escaped as the exposition format requires (backslash, quote, newline). */
const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} gauge`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      out.push(`${f.name}${labels ? `{${labels}}` : ''} ${s.value}`);
    }
  }
  return `${out.join('\n')}\n`;
}

const SCOPE_PHASES = ['pending', 'retiring', 'steady', 'publish', 'switch'] as const;
const ROOT_PHASES = ['steady', 'overlap'] as const;

/** What `check --metrics` writes: the facts of `meshHealth` and its verdict. */
export function healthMetrics(h: MeshHealth, m: { mesh: string; trustDomain: string }): string {
  const cert = (c: MeshHealth['certificates'][number]) => ({
    tier: c.tier,
    scope: c.scope,
    service: c.service,
    role: c.role,
    serial: c.serial,
  });
  const families: Family[] = [
    {
      name: 'trellis_mesh_info',
      help: 'The mesh these metrics describe.',
      samples: [{ labels: { mesh: m.mesh, trust_domain: m.trustDomain }, value: 1 }],
    },
    {
      name: 'trellis_check_timestamp_seconds',
      help: 'When trellis check judged the mesh (its --now).',
      samples: [{ labels: {}, value: seconds(h.now) }],
    },
    {
      name: 'trellis_check_status',
      help: 'The Nagios code of trellis check: 0 ok, 1 warning, 2 critical.',
      samples: [{ labels: {}, value: NAGIOS[h.level] }],
    },
    {
      name: 'trellis_check_findings',
      help: 'Things trellis check judged, by level.',
      samples: (['ok', 'warning', 'critical'] as const).map((level) => ({
        labels: { level },
        value: h.items.filter((i) => i.level === level).length,
      })),
    },
    {
      name: 'trellis_certificate_not_after_seconds',
      help: 'Expiry (notAfter) of each live certificate, unix seconds.',
      samples: h.certificates.map((c) => ({ labels: cert(c), value: seconds(c.notAfter) })),
    },
    {
      name: 'trellis_certificate_not_before_seconds',
      help: 'Start (notBefore) of each live certificate, unix seconds.',
      samples: h.certificates.map((c) => ({ labels: cert(c), value: seconds(c.notBefore) })),
    },
    {
      name: 'trellis_leaf_renew_at_seconds',
      help: 'When renew re-mints each current leaf (its renewal point, a third of its life left), unix seconds.',
      samples: h.certificates
        .filter((c) => c.renewAt)
        .map((c) => ({ labels: { scope: c.scope, service: c.service, serial: c.serial }, value: seconds(c.renewAt!) })),
    },
    {
      name: 'trellis_crl_next_update_seconds',
      help: 'nextUpdate of each CRL (kind root, leaf or anchor), unix seconds.',
      samples: h.crls
        .filter((c) => c.nextUpdate)
        .map((c) => ({
          labels: { kind: c.kind, scope: c.scope, issuer_serial: c.issuerSerial },
          value: seconds(c.nextUpdate!),
        })),
    },
    {
      name: 'trellis_crl_this_update_seconds',
      help: 'thisUpdate of each CRL (kind root, leaf or anchor), unix seconds.',
      samples: h.crls.map((c) => ({
        labels: { kind: c.kind, scope: c.scope, issuer_serial: c.issuerSerial },
        value: seconds(c.thisUpdate),
      })),
    },
    {
      name: 'trellis_rotation_phase',
      help: 'Phase of each scope (1 for the current one): pending, retiring, steady, publish, switch.',
      samples: h.scopes.flatMap((s) =>
        SCOPE_PHASES.map((phase) => ({ labels: { scope: s.scope, phase }, value: s.phase === phase ? 1 : 0 })),
      ),
    },
    {
      name: 'trellis_rotation_next_gate_seconds',
      help: 'When the next rotation gate of a scope opens (gate switch or retire), unix seconds.',
      samples: h.scopes
        .filter((s) => s.gate)
        .map((s) => ({ labels: { scope: s.scope, gate: s.gate!.gate }, value: seconds(s.gate!.at) })),
    },
    {
      name: 'trellis_fleet_endpoint_not_ready',
      help:
        'An endpoint a rotation waits for (state waiting: it holds a fleet gate) or that refuses clients of the new ' +
        'intermediate after a switch (state refusing: roll back), 1 per endpoint.',
      samples: h.scopes.flatMap((s) => [
        ...(s.fleet?.waiting ?? []).map((endpoint) => ({
          labels: { scope: s.scope, endpoint, state: 'waiting' },
          value: 1,
        })),
        ...(s.fleet?.refusing ?? []).map((endpoint) => ({
          labels: { scope: s.scope, endpoint, state: 'refusing' },
          value: 1,
        })),
      ]),
    },
    {
      name: 'trellis_root_rotation_phase',
      help: 'Phase of the root (1 for the current one): steady, overlap.',
      samples: ROOT_PHASES.map((phase) => ({ labels: { phase }, value: h.rootPhase === phase ? 1 : 0 })),
    },
    {
      name: 'trellis_host_key_since_seconds',
      help:
        'Since when leaves are signed for each host-held key (key: host), unix seconds: ' +
        'its age is time() minus this.',
      samples: h.hostKeys.map((k) => ({
        labels: { scope: k.scope, service: k.service, key: k.key },
        value: seconds(k.since),
      })),
    },
    {
      name: 'trellis_scope_unsafe_at_seconds',
      help: 'From when a new leaf of the scope would outlive its signing intermediate (renew refuses), unix seconds.',
      samples: h.scopes
        .filter((s) => s.unsafeAt)
        .map((s) => ({ labels: { scope: s.scope }, value: seconds(s.unsafeAt!) })),
    },
  ];
  return render(families);
}

export interface RenewRun {
  now: Date;
  success: boolean;
  minted: number;
  /** The last successful run, carried over from the previous file when this one failed. */
  lastSuccess?: Date;
}

/** What `renew --metrics` writes after every run, success or failure. */
export function renewMetrics(r: RenewRun): string {
  const lastSuccess = r.success ? r.now : r.lastSuccess;
  return render([
    {
      name: 'trellis_renew_last_run_timestamp_seconds',
      help: 'When trellis-ci renew last ran (its --now), unix seconds.',
      samples: [{ labels: {}, value: seconds(r.now) }],
    },
    {
      name: 'trellis_renew_success',
      help: '1 when the last trellis-ci renew succeeded, 0 when it failed.',
      samples: [{ labels: {}, value: r.success ? 1 : 0 }],
    },
    {
      name: 'trellis_renew_leaves_minted',
      help: 'Leaves the last trellis-ci renew minted (0 when it failed).',
      samples: [{ labels: {}, value: r.success ? r.minted : 0 }],
    },
    ...(lastSuccess
      ? [
          {
            name: 'trellis_renew_last_success_timestamp_seconds',
            help: 'When trellis-ci renew last succeeded, unix seconds.',
            samples: [{ labels: {}, value: seconds(lastSuccess) }],
          },
        ]
      : []),
  ]);
}

/** The last success a previous renew metrics file records, to carry it across a failure. */
export function lastRenewSuccess(previous: string | undefined): Date | undefined {
  const m = previous ? /^trellis_renew_last_success_timestamp_seconds (\d+)$/m.exec(previous) : null;
  return m ? new Date(Number(m[1]) * 1000) : undefined;
}
