/**
 * The mesh's health as a monitoring agent sees it: every certificate, CRL,
 * pending ceremony and rotation gate judged against thresholds, as one of
 * ok / warning / critical. `check` prints it in the Nagios plugin style and
 * `--metrics` renders the same facts for Prometheus (metrics.ts). Pure: the
 * shell passes `now`. Not verify: this judges time, verify judges correctness.
 */
import { HOST_KEY_MAX_AGE_MS, hostKeySince } from '../custody/host-keys.js';
import { fingerprint, type Certificate } from '../x509/certificates.js';
import { leafDue, leafNames, type DueReason } from '../ledger/issuance.js';
import { crlSetOf, inRole, liveIntermediates, type IntermediateRole } from '../trust/live.js';
import { activeIssuer } from '../trust/scope-trust.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { leafLifetimes } from '../procedures/ci-procedures.js';
import { renewalPoint } from '../x509/profiles.js';
import { anchorCrlOf, crlOf, displaySerial, parseCrls, type Crl } from '../x509/revocation.js';
import { nextGate, type ScopeState } from '../rotation/rotation.js';
import { describeWaiting, fleetStatus, probeEvidence, type ProbeRun, type Waiting } from '../rotation/fleet-gate.js';
import { formatDuration, iso, notYetValid } from '../model/time.js';

const DAY = 86_400_000;

type HealthLevel = 'ok' | 'warning' | 'critical';

/** Nagios plugin exit codes: `check`'s own, which differ from the contract's (DESIGN.md §6). */
export const NAGIOS = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;

/** A remaining-time window: warning under `warn`, critical under `crit` (ms). */
export interface Window {
  warn: number;
  crit: number;
}

export interface Thresholds {
  root: Window;
  intermediate: Window;
  rootCrl: Window;
  /** Leaves: unset means by life (warning past the renewal point, ⅓ left; critical under ⅙ left). */
  leaf: Partial<Window>;
  /** Scope CRLs: unset means by life (warning past half, where renew re-signs; critical under ⅙ left). */
  crl: Partial<Window>;
  /** How long an open rotation gate may wait for renew before it is overdue. */
  gateOverdue: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  root: { warn: 365 * DAY, crit: 90 * DAY },
  intermediate: { warn: 90 * DAY, crit: 30 * DAY },
  rootCrl: { warn: 30 * DAY, crit: 7 * DAY },
  leaf: {},
  crl: {},
  gateOverdue: DAY,
};

type HealthKind = 'certificate' | 'crl' | 'ceremony' | 'gate' | 'issuer' | 'rotation' | 'host-key' | 'fleet';

interface HealthItem {
  level: HealthLevel;
  kind: HealthKind;
  /** `root`, `SCOPE`, `SCOPE/SERVICE`: what an operator looks up. */
  subject: string;
  message: string;
  file?: string;
}

interface CertificateFact {
  tier: 'root' | 'intermediate' | 'leaf';
  /** Empty for a root. */
  scope: string;
  /** Empty for a root or an intermediate. */
  service: string;
  /** root: active | previous; intermediate: its live role; leaf: current. */
  role: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** Leaves: when renew re-mints it. */
  renewAt?: Date;
}

interface CrlFact {
  /** root: the root CRL; leaf: a scope's CRL of its leaves; anchor: a scope's CRL over an anchored intermediate. */
  kind: 'root' | 'leaf' | 'anchor';
  /** Empty for the root CRL. */
  scope: string;
  /** Serial of the certificate whose key signs it. */
  issuerSerial: string;
  thisUpdate: Date;
  nextUpdate?: Date;
}

interface ScopeFact {
  scope: string;
  /** pending: declared, no intermediate yet; retiring: its file was deleted, its intermediates are still trusted. */
  phase: 'pending' | 'retiring' | 'steady' | 'publish' | 'switch';
  gate?: { gate: string; at: Date };
  /**
   * After this, a new leaf of the scope's longest TTL would outlive the intermediate that would sign it: renew refuses.
   */
  unsafeAt?: Date;
  /** Endpoints holding a fleet gate, and endpoints refusing clients of the new intermediate after a switch. */
  fleet?: { waiting: string[]; refusing: string[] };
}

export interface MeshHealth {
  now: Date;
  level: HealthLevel;
  items: HealthItem[];
  certificates: CertificateFact[];
  crls: CrlFact[];
  scopes: ScopeFact[];
  rootPhase: string;
  /** Each host-held service's current key and since when leaves are signed for it. */
  hostKeys: { scope: string; service: string; key: string; since: Date }[];
}

const WORST: Record<HealthLevel, number> = { ok: 0, warning: 1, critical: 2 };
const worse = (a: HealthLevel, b: HealthLevel): HealthLevel => (WORST[b] > WORST[a] ? b : a);

/** "20d 4h", "3h", "25m": a span to the hour (to the minute under one), what a pager line needs. */
function span(ms: number, round: (x: number) => number = Math.floor): string {
  const h = round(Math.abs(ms) / 3_600_000);
  if (h < 1) return `${round(Math.abs(ms) / 60_000)}m`;
  return h >= 48 ? `${Math.floor(h / 24)}d${h % 24 ? ` ${h % 24}h` : ''}` : `${h}h`;
}

/** "in 20d 4h" / "3h ago". */
function when(at: Date, now: Date): string {
  const ms = at.getTime() - now.getTime();
  return ms >= 0 ? `in ${span(ms)}` : `${span(ms)} ago`;
}

/** ": critical under 2d": the threshold a level was judged by. */
function under(level: HealthLevel, w: Window): string {
  return `: ${level} under ${span(level === 'critical' ? w.crit : w.warn, Math.round)}`;
}

/** A certificate or CRL dated after `now` (beyond the skew allowance): every peer refuses it, so critical. */
const early = (from: Date, now: Date, refused = 'peers refuse it'): string | undefined =>
  notYetValid(from, now) ? `not valid before ${iso(from)} (${when(from, now)}): ${refused} until then` : undefined;

/** Judges a remaining time against a window. */
function byWindow(notAfter: Date, now: Date, w: Window): HealthLevel {
  const left = notAfter.getTime() - now.getTime();
  return left <= 0 || left < w.crit ? 'critical' : left < w.warn ? 'warning' : 'ok';
}

/** A leaf's or a scope CRL's window: fixed when the flags set it, else from its own life. */
function lifeWindow(notBefore: Date, notAfter: Date, fixed: Partial<Window>, warnAtLeft: number): Window {
  const life = notAfter.getTime() - notBefore.getTime();
  return { warn: fixed.warn ?? life * warnAtLeft, crit: fixed.crit ?? life / 6 };
}

const DUE_TEXT: Partial<Record<DueReason, string>> = {
  'renewal-window': 'past its renewal point: trellis-ci renew has not re-minted it',
  'not-yet-valid': 'minted under a --now ahead of this clock: run trellis-ci renew, which re-mints it',
  'issuer-changed': 'signed by an intermediate that no longer signs: trellis-ci renew has not re-minted it',
  'names-changed': 'its names changed in the scope file: trellis-ci renew has not re-minted it',
};

export async function meshHealth(mesh: Mesh, now: Date, t: Thresholds = DEFAULT_THRESHOLDS): Promise<MeshHealth> {
  const items: HealthItem[] = [];
  const certificates: CertificateFact[] = [];
  const hostKeys: MeshHealth['hostKeys'] = [];
  const crls: CrlFact[] = [];
  const scopes: ScopeFact[] = [];
  // Every probe run is verified once per health reading, not once per rotating scope.
  let proven: ProbeRun[] | undefined;
  const probeRuns = () => (proven ??= probeEvidence(mesh, now).runs);
  const add = (level: HealthLevel, kind: HealthKind, subject: string, message: string, file?: string) =>
    items.push({ level, kind, subject, message, ...(file ? { file } : {}) });
  const certText = (notAfter: Date, serial: string, level: HealthLevel, w?: Window) =>
    `serial ${serial} ${notAfter <= now ? 'expired' : 'expires'} ${iso(notAfter)} ` +
    `(${when(notAfter, now)})${notAfter <= now ? '' : level !== 'ok' && w ? under(level, w) : ''}`;

  // The root tier.
  if (!mesh.root) add('critical', 'certificate', 'root', 'no root certificate', paths.rootCert);
  else {
    const notYet = early(mesh.root.notBefore, now);
    const level = byWindow(mesh.root.notAfter, now, t.root);
    if (notYet)
      add(
        'critical',
        'certificate',
        'root',
        `root serial ${displaySerial(mesh.root.serialNumber)} ${notYet}`,
        paths.rootCert,
      );
    certificates.push({
      tier: 'root',
      scope: '',
      service: '',
      role: 'active',
      serial: displaySerial(mesh.root.serialNumber),
      notBefore: mesh.root.notBefore,
      notAfter: mesh.root.notAfter,
    });
    const plan = level !== 'ok' ? '; plan a root rotation (trellis-root rotate root)' : '';
    add(
      level,
      'certificate',
      'root',
      `root ${certText(mesh.root.notAfter, displaySerial(mesh.root.serialNumber), level, t.root)}${plan}`,
      paths.rootCert,
    );
  }
  const rootPhase = mesh.rootState?.phase ?? 'steady';
  if (mesh.previousRoot) {
    const p = mesh.previousRoot;
    certificates.push({
      tier: 'root',
      scope: '',
      service: '',
      role: 'previous',
      serial: displaySerial(p.serialNumber),
      notBefore: p.notBefore,
      notAfter: p.notAfter,
    });
    add(
      'ok',
      'certificate',
      'root',
      `previous root (being retired) ${certText(p.notAfter, displaySerial(p.serialNumber), 'ok')}`,
      paths.rootPrevious,
    );
  }
  if (rootPhase === 'overlap')
    add(
      'ok',
      'rotation',
      'root',
      `root rotation in its overlap since ${mesh.rootState!.since}: the custodian finalizes it (trellis-root ` +
        `rotate root --finalize) once every host has the new bundles`,
    );
  await judgeCrlFile(
    mesh.rootCrlPem,
    mesh.roots.map((c) => ({ cert: c, kind: 'root' as const })),
    '',
    'root',
    paths.rootCrl,
    () => t.rootCrl,
    crls,
    add,
    now,
    {
      missing: [
        'warning',
        'no root CRL: revocation of intermediates cannot be checked; the custodian runs trellis-root crl',
      ],
      unsigned: 'critical',
      fix: 'the custodian runs trellis-root crl',
    },
  );

  for (const def of mesh.scopes) {
    const m = mesh.material.get(def.name)!;
    if (!m.intermediate) {
      scopes.push({ scope: def.name, phase: 'pending' });
      add(
        'warning',
        'ceremony',
        def.name,
        `pending its offline ceremony: declared in ${paths.scopeFile(def.name)}, no intermediate yet, so none ` +
          `of its ${def.services.length} service(s) can get a leaf; the custodian runs trellis-root intermediate ` +
          `${def.name}`,
        paths.scopeFile(def.name),
      );
      continue;
    }
    const live = liveIntermediates(mesh, def.name);
    const next = inRole(live, 'next');
    for (const l of live) {
      const serial = displaySerial(l.cert.serialNumber);
      certificates.push({
        tier: 'intermediate',
        scope: def.name,
        service: '',
        role: l.role,
        serial,
        notBefore: l.cert.notBefore,
        notAfter: l.cert.notAfter,
      });
      const judged = l.role === 'next' || (l.role === 'active' && !next);
      const level = judged ? byWindow(l.cert.notAfter, now, t.intermediate) : 'ok';
      const notYet = early(l.cert.notBefore, now);
      if (notYet) add('critical', 'certificate', def.name, `${l.role} intermediate serial ${serial} ${notYet}`, l.file);
      add(
        level,
        'certificate',
        def.name,
        `${l.role} intermediate ` +
          `${certText(l.cert.notAfter, serial, level, t.intermediate)}${roleNote(l.role, level, def.name)}`,
        l.file,
      );
    }

    // Time-to-unsafe: the intermediate that signs after any switch bounds every new leaf.
    const signer = next ?? inRole(live, 'active')!;
    const unsafeAt = new Date(signer.cert.notAfter.getTime() - leafLifetimes(mesh, def.name).longestLeafTtl);
    if (unsafeAt <= now)
      add(
        'critical',
        'issuer',
        def.name,
        `since ${iso(unsafeAt)} a new leaf would outlive the intermediate (expires ` +
          `${iso(signer.cert.notAfter)}): renew refuses; rotate it (trellis-root rotate intermediate ` +
          `${def.name}) or shorten the leaf ttl`,
        signer.file,
      );

    const state = m.state!;
    const gate = nextGate(state);
    const fleet = state.phase !== 'steady' ? fleetHealth(mesh, def.name, state, probeRuns(), add) : undefined;
    scopes.push({
      scope: def.name,
      phase: state.phase,
      ...(gate ? { gate: { gate: gate.gate, at: new Date(gate.at) } } : {}),
      unsafeAt,
      ...(fleet ? { fleet } : {}),
    });
    if (gate) {
      const open = now.getTime() - new Date(gate.at).getTime();
      const overdue = open > t.gateOverdue;
      const opens = `${open < 0 ? 'opens' : 'opened'} ${gate.at} (${when(new Date(gate.at), now)})`;
      const late = overdue
        ? `, overdue by more than ${formatDuration(t.gateOverdue)}: trellis-ci renew has not advanced it`
        : '';
      add(
        overdue ? 'warning' : 'ok',
        'gate',
        def.name,
        `phase ${state.phase}: its ${gate.gate} gate ${opens}${late}`,
        paths.state(def.name),
      );
    }

    const active = activeIssuer(mesh, def.name)!;
    const hostKeysOf = hostKeySince(mesh, def.name);
    for (const svc of def.services) {
      const who = `${def.name}/${svc.name}`;
      const hk = svc.key === 'host' ? hostKeysOf.get(svc.name) : undefined;
      if (hk) {
        hostKeys.push({ scope: def.name, service: svc.name, ...hk });
        const age = now.getTime() - hk.since.getTime();
        const old = age > HOST_KEY_MAX_AGE_MS;
        const rotate = old
          ? `, past ${span(HOST_KEY_MAX_AGE_MS)}: rotate it on the host (trellis-agent keygen --rotate)`
          : '';
        add(
          old ? 'warning' : 'ok',
          'host-key',
          who,
          `host-held key ${hk.key} signed since ${iso(hk.since)} (${span(age)})${rotate}`,
          paths.csr(def.name, svc.name),
        );
      }
      const r = m.leaves.get(svc.name);
      if (!r) {
        add('warning', 'certificate', who, 'no leaf yet: the next trellis-ci renew mints it', paths.leaves(def.name));
        continue;
      }
      const renewAt = renewalPoint(r);
      certificates.push({
        tier: 'leaf',
        scope: def.name,
        service: svc.name,
        role: 'current',
        serial: displaySerial(r.serial),
        notBefore: r.notBefore,
        notAfter: r.notAfter,
        renewAt,
      });
      const w = lifeWindow(r.notBefore, r.notAfter, t.leaf, 1 / 3);
      const due = leafDue(r, leafNames(def.name, svc, mesh.config.trustDomain), active, now);
      let level = byWindow(r.notAfter, now, w);
      // Without a fixed --leaf-warn, the renewal point itself is the warning line (renewalPoint is the one rule for
      // it).
      if (t.leaf.warn === undefined && level === 'warning' && due !== 'renewal-window') level = 'ok';
      const reason = due && DUE_TEXT[due] ? DUE_TEXT[due]! : undefined;
      if (reason && (due !== 'renewal-window' || t.leaf.warn === undefined)) level = worse(level, 'warning');
      if (due === 'not-yet-valid') {
        add(
          'critical',
          'certificate',
          who,
          `leaf serial ${displaySerial(r.serial)} ${early(r.notBefore, now)}; ${reason}`,
          paths.leaves(def.name),
        );
        continue;
      }
      const judged = level === 'critical' || t.leaf.warn !== undefined ? w : undefined;
      const why = level !== 'ok' && reason ? `; ${reason}` : '';
      const run = level === 'critical' ? '; run trellis-ci renew' : '';
      const expiry = certText(r.notAfter, displaySerial(r.serial), level, judged);
      const text = `leaf ${expiry}, renew at ${iso(renewAt)}${why}${run}`;
      add(level, 'certificate', who, text, paths.leaves(def.name));
    }

    const crlSet = crlSetOf(live);
    await judgeCrlFile(
      m.crlPem,
      [
        ...crlSet.leaf.map((l) => ({ cert: l.cert, kind: 'leaf' as const })),
        ...crlSet.anchor.map((l) => ({ cert: l.cert, kind: 'anchor' as const })),
      ],
      def.name,
      def.name,
      paths.scopeCrl(def.name),
      (c) => lifeWindow(c.thisUpdate, c.nextUpdate ?? c.thisUpdate, t.crl, 1 / 2),
      crls,
      add,
      now,
      {
        missing: ['warning', 'no leaf CRL yet: the next trellis-ci renew signs it'],
        unsigned: 'warning',
        fix: 'trellis-ci renew re-signs it',
      },
    );
  }

  for (const [scope, m] of mesh.retired) {
    if (!m.intermediate) continue;
    scopes.push({ scope, phase: 'retiring' });
    add(
      'warning',
      'ceremony',
      scope,
      `scopes/${scope}.yaml was deleted but its intermediates are still trusted: pending the custodian's ` +
        `trellis-root retire ${scope}`,
      paths.intermediate(scope),
    );
  }

  const level = items.reduce<HealthLevel>((a, i) => worse(a, i.level), 'ok');
  return { now, level, items, certificates, crls, scopes, rootPhase, hostKeys };
}

function roleNote(role: IntermediateRole, level: HealthLevel, scope: string): string {
  if (role === 'active') return level === 'ok' ? '' : `; rotate it: trellis-root rotate intermediate ${scope}`;
  if (role === 'next')
    return level === 'ok'
      ? ' (being introduced: signs after the switch gate)'
      : `; the intermediate being introduced is itself expiring: abort and rotate again (trellis-root rotate ` +
          `intermediate ${scope} --abort)`;
  if (role === 'previous') return ' (being retired: not judged, its leaves are re-minted)';
  return ' (the active key under the retiring root: not judged)';
}

type Add = (level: HealthLevel, kind: HealthKind, subject: string, message: string, file?: string) => void;

/** One CRL file: each expected signer's CRL found and its nextUpdate judged. */
async function judgeCrlFile(
  pem: string | undefined,
  signers: { cert: Certificate; kind: CrlFact['kind'] }[],
  scope: string,
  subject: string,
  file: string,
  window: (c: Crl) => Window,
  out: CrlFact[],
  add: Add,
  now: Date,
  say: { missing: [HealthLevel, string]; unsigned: HealthLevel; fix: string },
): Promise<void> {
  if (pem === undefined) {
    add(say.missing[0], 'crl', subject, say.missing[1], file);
    return;
  }
  let parsed: Crl[];
  try {
    parsed = parseCrls(pem);
  } catch {
    add('critical', 'crl', subject, `not a readable CRL file: ${say.fix}`, file);
    return;
  }
  for (const s of signers) {
    const crl = s.kind === 'anchor' ? await anchorCrlOf(parsed, s.cert) : await crlOf(parsed, s.cert);
    const label = `${s.kind} CRL of ${s.cert.subject}`;
    if (!crl) {
      add(say.unsigned, 'crl', subject, `no ${label} (${fingerprint(s.cert).slice(0, 19)}…): ${say.fix}`, file);
      continue;
    }
    out.push({
      kind: s.kind,
      scope,
      issuerSerial: displaySerial(s.cert.serialNumber),
      thisUpdate: crl.thisUpdate,
      ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate } : {}),
    });
    if (!crl.nextUpdate) {
      add('critical', 'crl', subject, `${label} has no nextUpdate: ${say.fix}`, file);
      continue;
    }
    const notYet = early(crl.thisUpdate, now, 'verifiers that check CRLs refuse every chain through it');
    if (notYet) {
      add('critical', 'crl', subject, `${label} ${notYet}; ${say.fix}`, file);
      continue;
    }
    const w = window(crl);
    const level = byWindow(crl.nextUpdate, now, w);
    const past = crl.nextUpdate <= now;
    const verdict = past
      ? ': stale, verifiers that check CRLs refuse every chain through it'
      : level !== 'ok'
        ? under(level, w)
        : '';
    const fix = level !== 'ok' ? `; ${say.fix}` : '';
    add(
      level,
      'crl',
      subject,
      `${label} next update ${iso(crl.nextUpdate)} (${when(crl.nextUpdate, now)})${verdict}${fix}`,
      file,
    );
  }
}

const WORD: Record<HealthLevel | 'unknown', string> = {
  ok: 'OK',
  warning: 'WARNING',
  critical: 'CRITICAL',
  unknown: 'UNKNOWN',
};

/** The one summary line, Nagios style: `TRELLIS CRITICAL - 2 critical, 1 warning: …| perfdata`. */
function summaryLine(h: MeshHealth, t: Thresholds = DEFAULT_THRESHOLDS): string {
  const count = (l: HealthLevel) => h.items.filter((i) => i.level === l).length;
  const bad = h.items.filter((i) => i.level !== 'ok').sort((a, b) => WORST[b.level] - WORST[a.level]);
  const head =
    h.level === 'ok'
      ? `${h.certificates.length} certificates, ${h.crls.length} CRLs, ` +
        `${h.scopes.filter((s) => s.phase !== 'pending' && s.phase !== 'retiring').length} scopes in service`
      : `${count('critical')} critical, ${count('warning')} warning: ${bad
          .slice(0, 3)
          .map((i) => `${i.subject}: ${i.message.split(/[;:] /)[0]}`)
          .join('; ')}${bad.length > 3 ? `; and ${bad.length - 3} more` : ''}`;
  return `TRELLIS ${WORD[h.level]} - ${head} | ${perfdata(h, t)}`;
}

/** Nagios perfdata: counts, and the soonest expiry of each judged tier in seconds with its thresholds. */
function perfdata(h: MeshHealth, t: Thresholds): string {
  const count = (l: HealthLevel) => h.items.filter((i) => i.level === l).length;
  const s = (ms: number) => Math.floor(ms / 1000);
  const left = (d: Date) => s(d.getTime() - h.now.getTime());
  const soonest = (c: CertificateFact[]) => (c.length ? Math.min(...c.map((x) => left(x.notAfter))) : undefined);
  const fields = [
    `critical=${count('critical')}`,
    `warning=${count('warning')}`,
    `certificates=${h.certificates.length}`,
    `pending=${h.scopes.filter((x) => x.phase === 'pending' || x.phase === 'retiring').length}`,
  ];
  const root = soonest(h.certificates.filter((c) => c.tier === 'root' && c.role === 'active'));
  if (root !== undefined) fields.push(`root_left=${root}s;${s(t.root.warn)};${s(t.root.crit)}`);
  const inter = soonest(
    h.certificates.filter((c) => c.tier === 'intermediate' && (c.role === 'active' || c.role === 'next')),
  );
  if (inter !== undefined)
    fields.push(`intermediate_left=${inter}s;${s(t.intermediate.warn)};${s(t.intermediate.crit)}`);
  const leaf = soonest(h.certificates.filter((c) => c.tier === 'leaf'));
  if (leaf !== undefined) fields.push(`leaf_left=${leaf}s`);
  const crl = h.crls.filter((c) => c.nextUpdate).map((c) => left(c.nextUpdate!));
  if (crl.length) fields.push(`crl_left=${Math.min(...crl)}s`);
  return fields.join(' ');
}

/** The summary line, then one line per judged thing, worst first. */
export function renderHealth(h: MeshHealth, t: Thresholds = DEFAULT_THRESHOLDS): string {
  const sorted = [...h.items].sort((a, b) => WORST[b.level] - WORST[a.level]);
  const lines = sorted.map(
    (i) =>
      `${WORD[i.level].padEnd(8)} ${i.kind.padEnd(11)} ${i.subject.padEnd(22)} ` +
      `${i.message}${i.file ? `  (${i.file})` : ''}`,
  );
  return `${[summaryLine(h, t), `as of ${iso(h.now)}`, ...lines].join('\n')}\n`;
}

/** The line printed when check cannot judge at all (exit 3). */
export function unknownLine(why: string): string {
  return `TRELLIS UNKNOWN - ${why.split('\n')[0]}`;
}

/**
 * What the probes say of a rotation: a fleet gate held names the endpoints it waits for (warning); an endpoint
 * refusing clients of the new intermediate after the switch is an outage under way (critical, whatever the gate
 * mode); consumers no probe can prove are listed, so nobody reads a green gate as covering them.
 */
function fleetHealth(
  mesh: Mesh,
  scope: string,
  state: ScopeState,
  runs: readonly ProbeRun[],
  add: (level: HealthLevel, kind: HealthKind, subject: string, message: string, file?: string) => void,
): ScopeFact['fleet'] {
  const f = fleetStatus(mesh, scope, state, runs);
  const list = (ws: Waiting[]) => describeWaiting(ws).join('; ');
  if (f.refusing.length)
    add(
      'critical',
      'fleet',
      scope,
      `endpoints refuse clients of the new intermediate after the switch; roll back: trellis-root rotate ` +
        `intermediate ${scope} --abort (renew holds the next gate); refusing: ${list(f.refusing)}`,
      paths.state(scope),
    );
  if (f.waiting.length)
    add(
      'warning',
      'fleet',
      scope,
      `its ${state.phase === 'publish' ? 'switch' : 'retire'} gate is held by the fleet; deploy to these ` +
        `endpoints, then trellis-ci probe; waiting for ${list(f.waiting)}`,
      paths.state(scope),
    );
  if (f.unproven.length)
    add(
      'ok',
      'fleet',
      scope,
      `not proven by a probe (no confirmed endpoint; the time gate and the longest leaf TTL cover them): ` +
        f.unproven.join(', '),
      paths.state(scope),
    );
  return { waiting: f.waiting.map((w) => w.endpoint), refusing: f.refusing.map((w) => w.endpoint) };
}
