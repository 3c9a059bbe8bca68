/**
 * `trellis-ci report`: the mesh on one self-contained HTML page. The model is
 * read from the store by pure functions (the tree from liveIntermediates, the
 * matrix from the bundles as written, checked against the boundary rule, the
 * findings from verify); the page has inline CSS and SVG only, and a CSP that
 * forbids every fetch. Every string from the store is escaped.
 */
import { fingerprint, signedBy, type Certificate } from '../x509/certificates.js';
import { parseLedger } from '../ledger/ledger.js';
import { displaySerial } from '../x509/revocation.js';
import { liveIntermediates, type IntermediateRole } from '../trust/live.js';
import { scopeDef, trustedScopeNames } from '../trust/scope-trust.js';
import type { Mesh } from '../model/mesh.js';
import { meshStatus, type MeshStatus } from '../procedures/plan.js';
import { parseCrls } from '../x509/revocation.js';
import { parseTrustOpensslPem, trustedScopes } from '../trust/trust.js';
import type { Finding } from '../verify/verify.js';
import { iso } from '../model/time.js';

interface CertRow {
  label: string;
  tier: 'root' | 'intermediate' | 'leaf';
  serial: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  state?: string;
}

export interface ReportInput {
  status: MeshStatus;
  roots: (CertRow & { current: boolean; intermediates: (CertRow & { scope: string; role: IntermediateRole })[] })[];
  scopes: {
    scope: string;
    kind: string;
    phase: string;
    gate?: { gate: string; at: string };
    switchAt?: string;
    retireAt?: string;
    crlNextUpdate?: string;
    leaves: (CertRow & { service: string; renewAt?: string })[];
  }[];
  /**
   * rows: verifier scope; cells: whether its bundle (as written) holds an anchor of each scope, and whether the rule
   * agrees.
   */
  matrix: {
    scopes: string[];
    rows: { scope: string; bundle: boolean; cells: { scope: string; trusted: boolean; rule: boolean }[] }[];
  };
  ledger: { at: string; ledger: string; seq: number; op: string; actor: string }[];
  findings: Finding[];
}

const cert = (label: string, tier: CertRow['tier'], c: Certificate): CertRow => ({
  label,
  tier,
  serial: displaySerial(c.serialNumber),
  fingerprint: fingerprint(c),
  notBefore: iso(c.notBefore),
  notAfter: iso(c.notAfter),
});

/** The report's model: everything the page shows, read from the mesh as of `now`. */
export async function reportInput(mesh: Mesh, now: Date, findings: Finding[], recent = 25): Promise<ReportInput> {
  const status = meshStatus(mesh, now);
  const scopes = trustedScopeNames(mesh);
  const inters = scopes.flatMap((s) =>
    liveIntermediates(mesh, s).map((l) => ({
      ...cert(`${s} ${l.role}`, 'intermediate', l.cert),
      scope: s,
      role: l.role,
      c: l.cert,
    })),
  );
  const roots = await Promise.all(
    mesh.roots.map(async (r) => ({
      ...cert(r.subject, 'root', r),
      current: mesh.root ? fingerprint(mesh.root) === fingerprint(r) : false,
      intermediates: (await Promise.all(inters.map(async (i) => ((await signedBy(i.c, r)) ? i : undefined))))
        .filter((i) => i !== undefined)
        .map(({ c: _c, ...i }) => i),
    })),
  );
  const byFp = new Map(inters.map((i) => [i.fingerprint, i.scope]));
  const matrix = {
    scopes: mesh.scopes.map((s) => s.name),
    rows: mesh.scopes.map((def) => {
      const pem = mesh.material.get(def.name)?.trustOpensslPem;
      const held = new Set((pem ? parseTrustOpensslPem(pem) : []).map((t) => byFp.get(fingerprint(t.cert))));
      const rule = new Set(trustedScopes(scopeDef(mesh, def.name), trustedScopeNames(mesh)));
      // The rule can only ask for a scope that has an intermediate to trust.
      const anchored = (s: string) => liveIntermediates(mesh, s).some((l) => l.anchored);
      return {
        scope: def.name,
        bundle: pem !== undefined,
        cells: mesh.scopes.map((s) => ({
          scope: s.name,
          trusted: held.has(s.name),
          rule: rule.has(s.name) && anchored(s.name),
        })),
      };
    }),
  };
  const scopeRows = status.scopes.map((s) => {
    const m = mesh.material.get(s.scope)!;
    let crlNextUpdate: string | undefined;
    try {
      const next = (m.crlPem ? parseCrls(m.crlPem) : [])
        .map((c) => c.nextUpdate)
        .filter((d): d is Date => !!d)
        .sort((a, b) => a.getTime() - b.getTime())[0];
      crlNextUpdate = next ? iso(next) : undefined;
    } catch {
      /* verify reports an unreadable CRL */
    }
    return {
      scope: s.scope,
      kind: s.kind,
      phase: s.phase,
      gate: s.gate,
      switchAt: m.state?.rotation?.switchAt,
      retireAt: m.state?.rotation?.retireAt,
      crlNextUpdate,
      leaves: s.leaves.map((l) => {
        const rec = m.leaves.get(l.service);
        return {
          label: `${s.scope}/${l.service}`,
          tier: 'leaf' as const,
          service: l.service,
          serial: l.serial ?? '',
          fingerprint: rec?.fingerprint ?? '',
          notBefore: rec ? iso(rec.notBefore) : '',
          notAfter: l.notAfter ?? '',
          state: l.state,
          renewAt: l.renewAt,
        };
      }),
    };
  });
  const ledgers = [
    ['root', mesh.rootLedger] as const,
    ...mesh.scopes.map((s) => [s.name, mesh.material.get(s.name)!.ledger] as const),
  ];
  const ledger = ledgers
    .flatMap(([name, text]) => {
      try {
        return parseLedger(text).entries.map((e) => ({ at: e.at, ledger: name, seq: e.seq, op: e.op, actor: e.actor }));
      } catch {
        return []; // verify reports a broken ledger
      }
    })
    .sort((a, b) => b.at.localeCompare(a.at) || b.seq - a.seq)
    .slice(0, recent);
  return { status, roots, scopes: scopeRows, matrix, ledger, findings: findings.filter((f) => f.level !== 'ok') };
}

/** HTML-escapes text for element content and quoted attribute values. */
function escapeHtml(s: unknown): string {
  return String(s ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}
const e = escapeHtml;
const day = (iso: string) => iso.slice(0, 10);
const short = (s: string) => (s.length > 16 ? `${s.slice(0, 16)}…` : s);

/** The page's style: each inner array is one line of the `<style>`, one rule (or part of a long one) a string. */
const CSS_LINES = [
  [
    ':root{--ok:#1a7f37;--warn:#9a6700;--err:#cf222e;--pend:#6e7781;--fg:#1f2328;--mute:#59636e;',
    '--line:#d1d9e0;--bg:#f6f8fa}',
  ],
  [
    '*{box-sizing:border-box}',
    'body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);margin:0;background:#fff}',
  ],
  [
    'header{padding:18px 28px;border-bottom:1px solid var(--line);background:var(--bg)}',
    'h1{font-size:20px;margin:0 0 4px}',
    'header p{margin:0;color:var(--mute)}',
  ],
  ['main{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px;padding:18px 28px}'],
  [
    'section{border:1px solid var(--line);border-radius:8px;padding:12px 16px;min-width:0}',
    'section.wide{grid-column:1/-1}',
    'h2{font-size:15px;margin:0 0 10px}',
  ],
  [
    'ul.tree,ul.tree ul{list-style:none;margin:0;padding-left:18px}',
    'ul.tree{padding-left:0}',
    'ul.tree li{margin:3px 0;position:relative}',
  ],
  [
    'ul.tree ul li::before{content:"";position:absolute;left:-12px;top:10px;width:8px;',
    'border-top:1px solid var(--line)}',
  ],
  [
    '.node{display:inline-block;padding:1px 8px;border:1px solid var(--line);border-radius:6px;background:#fff}',
    '.root{background:#ddf4ff}',
    '.inter{background:#fff8c5}',
  ],
  [
    'code,.mono{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap}',
    'td:first-child,#ledger td:nth-child(2){white-space:nowrap}',
    '.mute{color:var(--mute)}',
  ],
  [
    '.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:10px;',
    'border:1px solid currentColor;margin-left:4px}',
  ],
  [
    '.ok{color:var(--ok)}',
    '.warning,.due,.stale-issuer{color:var(--warn)}',
    '.error,.expired,.not-yet-valid,.missing{color:var(--err)}',
    '.pending{color:var(--pend)}',
  ],
  [
    'table{border-collapse:collapse;width:100%}',
    'th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}',
    'th{font-weight:600;background:var(--bg)}',
  ],
  [
    'table.matrix td,table.matrix th{text-align:center}',
    'table.matrix th:first-child,table.matrix td:first-child{text-align:left}',
  ],
  [
    'td.yes{background:#dafbe1;color:var(--ok);font-weight:700}',
    'td.no{background:#ffebe9;color:var(--err)}',
    'td.drift{background:#fff8c5;color:var(--warn);font-weight:700}',
  ],
  [
    'svg text{font:11px system-ui,sans-serif;fill:var(--fg)}',
    'svg .axis{stroke:var(--line)}',
    'svg .now{stroke:var(--err);stroke-width:1.5}',
  ],
];
const CSS = `\n${CSS_LINES.map((rules) => rules.join('')).join('\n')}\n`;

type IntermediateRow = ReportInput['roots'][number]['intermediates'][number];
type LeafRow = ReportInput['scopes'][number]['leaves'][number];

function leafHtml(l: LeafRow): string {
  const validity = l.serial ? `serial ${e(short(l.serial))} · until ${e(l.notAfter)}` : 'no leaf yet';
  return (
    `<li><span class="node" data-service="${e(l.label)}" data-serial="${e(l.serial)}">${e(l.service)}</span> ` +
    `<span class="tag ${e(l.state)}">${e(l.state)}</span> <span class="mono mute">${validity}</span></li>`
  );
}

/** An intermediate, with the leaves it signs when it is the active one. */
function intermediateHtml(i: IntermediateRow, leaves: LeafRow[]): string {
  const node =
    `<span class="node inter" data-scope="${e(i.scope)}" data-serial="${e(i.serial)}">` +
    `${e(i.scope)} <span class="tag">${e(i.role)}</span></span>`;
  const dates = `<span class="mono mute">serial ${e(short(i.serial))} · until ${e(day(i.notAfter))}</span>`;
  const signs = i.role === 'active' ? `<ul>${leaves.map(leafHtml).join('')}</ul>` : '';
  return `<li>${node}\n  ${dates}\n  ${signs}</li>`;
}

function treeHtml(r: ReportInput): string {
  const scopeOf = new Map(r.scopes.map((s) => [s.scope, s]));
  const roots = r.roots.map((root) => {
    const previous = root.current ? '' : ' <span class="tag warning">previous</span>';
    const node = `<span class="node root" data-serial="${e(root.serial)}">root ${e(root.label)}${previous}</span>`;
    const dates = `<span class="mono mute">serial ${e(short(root.serial))} · until ${e(day(root.notAfter))}</span>`;
    const inters = root.intermediates.map((i) => intermediateHtml(i, scopeOf.get(i.scope)?.leaves ?? [])).join('');
    return `<li>${node}\n ${dates}\n <ul>${inters}</ul></li>`;
  });
  const pending = r.scopes
    .filter((s) => s.phase === 'pending')
    .map(
      (s) =>
        `<li><span class="node pending" data-scope="${e(s.scope)}">${e(s.scope)} <span class="tag ` +
        `pending">pending ceremony</span></span></li>`,
    );
  return `<ul class="tree" id="tree">${[...roots, ...pending].join('')}</ul>`;
}

/** One cell: green where the bundle trusts the issuer, red where not, yellow where the bundle and the rule differ. */
function matrixCellHtml(verifier: string, c: ReportInput['matrix']['rows'][number]['cells'][number]): string {
  const cls = c.trusted !== c.rule ? 'drift' : c.trusted ? 'yes' : 'no';
  const text = c.trusted !== c.rule ? (c.trusted ? '✓ ≠ rule' : '✗ ≠ rule') : c.trusted ? '✓' : '✗';
  const title = `${verifier} ${c.trusted ? 'trusts' : 'does not trust'} ${c.scope}`;
  return (
    `<td class="${cls}" data-verifier="${e(verifier)}" data-issuer="${e(c.scope)}" data-trusted="${c.trusted}" ` +
    `title="${e(title)}">${text}</td>`
  );
}

function matrixHtml(r: ReportInput): string {
  const head = r.matrix.scopes.map((s) => `<th scope="col">${e(s)}</th>`).join('');
  const rows = r.matrix.rows
    .map((row) => {
      const cells = !row.bundle
        ? `<td colspan="${row.cells.length}" class="pending" data-verifier="${e(row.scope)}">` +
          'no bundle yet: pending its ceremony</td>'
        : row.cells.map((c) => matrixCellHtml(row.scope, c)).join('');
      return `<tr><th scope="row">${e(row.scope)}</th>${cells}</tr>`;
    })
    .join('');
  const table =
    `<table class="matrix" id="matrix"><thead><tr><th>verifier ↓ · issuer →</th>${head}</tr></thead>` +
    `<tbody>${rows}</tbody></table>`;
  const legend =
    `<p class="mute">Read from each scope's <code>trust.openssl.pem</code> as written; a yellow cell is a bundle ` +
    'that differs from the boundary rule (a region trusts itself and global; global trusts every scope).</p>';
  return `${table}\n${legend}`;
}

/** A horizontal bar per certificate between its validity dates, with a line at now. */
function timelineSvg(id: string, rows: CertRow[], now: string, from: number, to: number): string {
  const W = 900;
  const L = 210;
  const R = 110;
  const H = 22;
  const top = 24;
  const x = (t: number) => L + ((Math.min(Math.max(t, from), to) - from) / (to - from)) * (W - L - R);
  const ticks = Array.from({ length: 6 }, (_, i) => from + ((to - from) * i) / 5);
  const colour = (r: CertRow) =>
    r.state === 'expired' || r.state === 'not-yet-valid' || Date.parse(r.notAfter) <= Date.parse(now)
      ? '#cf222e'
      : r.state === 'due' || r.state === 'stale-issuer'
        ? '#d4a72c'
        : r.tier === 'root'
          ? '#54aeff'
          : r.tier === 'intermediate'
            ? '#eac54f'
            : '#4ac26b';
  const bars = rows
    .map((r, i) => {
      const y = top + i * H;
      const x0 = x(Date.parse(r.notBefore || now));
      const x1 = x(Date.parse(r.notAfter));
      const label = `<text x="4" y="${y + 14}">${e(r.label)}</text>`;
      const title = `<title>${e(`${r.label} serial ${r.serial}: ${r.notBefore} → ${r.notAfter}`)}</title>`;
      const rect =
        `<rect x="${x0.toFixed(1)}" y="${y + 4}" width="${Math.max(2, x1 - x0).toFixed(1)}" height="12" rx="3" ` +
        `fill="${colour(r)}">${title}</rect>`;
      const minute = r.notAfter.slice(0, 16).replace('T', ' ');
      const until = `<text x="${(W - R + 6).toFixed(1)}" y="${y + 14}">${e(minute)}</text>`;
      const g = `<g class="bar" data-serial="${e(r.serial)}" data-not-after="${e(r.notAfter)}">`;
      return `${g}${label}\n${rect}\n${until}</g>`;
    })
    .join('');
  const h = top + rows.length * H + 8;
  const axis = ticks
    .map(
      (t) =>
        `<line class="axis" x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="16" y2="${h}"/><text ` +
        `x="${x(t).toFixed(1)}" y="12" text-anchor="middle">${e(new Date(t).toISOString().slice(0, 10))}</text>`,
    )
    .join('');
  const n = x(Date.parse(now));
  return (
    `<svg id="${e(id)}" viewBox="0 0 ${W} ${h}" width="100%" role="img" aria-label="${e(id)}">${axis}<line ` +
    `class="now" x1="${n.toFixed(1)}" x2="${n.toFixed(1)}" y1="16" y2="${h}"/><text x="${n.toFixed(1)}" ` +
    `y="${h - 1}" text-anchor="middle" fill="#cf222e">now</text>${bars}</svg>`
  );
}

function timelinesHtml(r: ReportInput): string {
  const now = Date.parse(r.status.now);
  const cas: CertRow[] = r.roots.flatMap((root) => [
    { ...root, label: `root${root.current ? '' : ' (previous)'}` },
    ...root.intermediates.map((i) => ({ ...i, label: `${i.scope} ${i.role}` })),
  ]);
  const casTo = Math.max(now + 86_400_000, ...cas.map((c) => Date.parse(c.notAfter)));
  const casFrom = Math.min(now, ...cas.map((c) => Date.parse(c.notBefore)));
  const leaves = r.scopes.flatMap((s) => s.leaves.filter((l) => l.notAfter));
  const leavesFrom = Math.min(now - 86_400_000, ...leaves.map((l) => Date.parse(l.notBefore)));
  const leavesTo = Math.max(now + 86_400_000, ...leaves.map((l) => Date.parse(l.notAfter)));
  const leafTimeline = leaves.length
    ? timelineSvg('timeline-leaves', leaves, r.status.now, leavesFrom, leavesTo)
    : '<p class="mute">no leaf minted yet</p>';
  return (
    `<h3>root and intermediates</h3>${timelineSvg('timeline-cas', cas, r.status.now, casFrom, casTo)}\n` +
    `<h3>leaves</h3>${leafTimeline}`
  );
}

function rotationsHtml(r: ReportInput): string {
  const rows = r.scopes
    .map((s) => {
      const phaseTag = s.phase === 'steady' ? 'ok' : s.phase === 'pending' ? 'pending' : 'warning';
      const gates =
        `${s.switchAt ? `switch ${e(s.switchAt)}` : ''}${s.retireAt ? `<br>retire ${e(s.retireAt)}` : ''}` +
        `${!s.switchAt && !s.retireAt ? '<span class="mute">none</span>' : ''}`;
      const open = s.gate && s.gate.at <= r.status.now ? ' <span class="tag ok">open</span>' : '';
      const nextGate = s.gate ? `${e(s.gate.gate)} ${e(s.gate.at)}${open}` : '<span class="mute">—</span>';
      return (
        `<tr data-scope="${e(s.scope)}"><td>${e(s.scope)}</td><td>${e(s.kind)}</td>` +
        `<td><span class="tag ${phaseTag}">${e(s.phase)}</span></td>\n<td>${gates}</td>\n` +
        `<td>${nextGate}</td><td class="mono">${e(s.crlNextUpdate ?? '')}</td></tr>`
      );
    })
    .join('');
  const root = r.status.root
    ? `<p>root phase <span class="tag ` +
      `${r.status.root.phase === 'steady' ? 'ok' : 'warning'}">${e(r.status.root.phase)}</span></p>`
    : '';
  return (
    `${root}<table id="rotations"><thead><tr><th>scope</th><th>kind</th><th>phase</th><th>gates</th><th>next ` +
    `gate</th><th>leaf CRL next update</th></tr></thead><tbody>${rows}</tbody></table>`
  );
}

function ledgerHtml(r: ReportInput): string {
  const rows = r.ledger
    .map(
      (l) =>
        `<tr><td class="mono">${e(l.at)}</td><td>${e(l.ledger)}</td><td>${e(l.seq)}</td><td>${e(l.op)}</td>` +
        `<td>${e(l.actor)}</td></tr>`,
    )
    .join('');
  return (
    '<table id="ledger"><thead><tr><th>at</th><th>ledger</th><th>#</th><th>operation</th><th>actor</th></tr>' +
    `</thead><tbody>${rows}</tbody></table>`
  );
}

function findingsHtml(r: ReportInput): string {
  if (!r.findings.length) return '<p class="ok" id="findings">✓ verify found nothing to report</p>';
  const order = { error: 0, warning: 1, pending: 2, ok: 3 } as const;
  const rows = [...r.findings]
    .sort((a, b) => order[a.level] - order[b.level])
    .map(
      (f) =>
        `<tr><td class="${e(f.level)}">${e(f.level)}</td><td>${e(f.check)}</td><td>${e(f.scope ?? '')}</td>` +
        `<td>${e(f.message)}</td><td class="mono">${e(f.file ?? '')}</td></tr>`,
    )
    .join('');
  return (
    '<table id="findings"><thead><tr><th>level</th><th>check</th><th>scope</th><th>finding</th><th>file</th></tr>' +
    `</thead><tbody>${rows}</tbody></table>`
  );
}

/** The whole page: no script, no external resource, and a CSP that would refuse one anyway. */
export function renderReportHtml(r: ReportInput): string {
  const count = (l: Finding['level']) => r.findings.filter((f) => f.level === l).length;
  // Coloured by its count: "0 error(s)" is good news, not red.
  const tally = (l: Finding['level'], noun: string) =>
    `<span id="verify-${l}" class="${count(l) ? l : 'ok'}">${count(l)} ${noun}</span>`;
  const verify = `${tally('error', 'error(s)')}, ${tally('warning', 'warning(s)')}, ${tally('pending', 'pending')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trellis report: ${e(r.status.mesh)}</title><style>${CSS}</style></head>
<body><header><h1>mesh ${e(r.status.mesh)} <span class="mute">(${e(r.status.trustDomain)})</span></h1>
<p>as of <span class="mono" id="as-of">${e(r.status.now)}</span> · verify: ${verify}</p></header>
<main>
<section><h2>trust tree: root → intermediates → services</h2>${treeHtml(r)}</section>
<section><h2>boundary: which scope trusts which</h2>${matrixHtml(r)}</section>
<section class="wide"><h2>expiry timeline</h2>${timelinesHtml(r)}</section>
<section><h2>rotations: phase and gates</h2>${rotationsHtml(r)}</section>
<section><h2>recent ledger entries</h2>${ledgerHtml(r)}</section>
<section class="wide"><h2>verify findings</h2>${findingsHtml(r)}</section>
</main></body></html>
`;
}
