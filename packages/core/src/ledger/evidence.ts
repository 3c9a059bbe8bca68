import { fingerprint, type Certificate } from '../x509/certificates.js';
import { sha256Hex } from '../crypto/crypto.js';
import type { FileWrite } from '../model/file-write.js';
import { iso } from '../model/time.js';
import { TrellisError } from '../model/errors.js';
import { parseJsonData } from '../model/data.js';
import { describeTarget, type DeploySelection } from '../config/config.js';
import { DEPLOY_RECORD_OP } from './deploy-record.js';

/**
 * Evidence records: what an auditor asks for after a rotation, recovery or
 * revocation. JSON for machines, Markdown for people, linked from the ledger.
 */
export interface CertRef {
  fingerprint: string;
  serial: string;
  subject: string;
  notAfter: string;
}

export interface EvidenceStep {
  step: string;
  at: string;
  actor: string;
  tool: string;
  note?: string;
}

export interface Evidence {
  id: string;
  kind: 'intermediate-rotation' | 'compromise-recovery' | 'root-rotation' | 'leaf-revocation';
  scope: string;
  status: 'in-progress' | 'completed' | 'aborted';
  reason?: string;
  started: string;
  ended?: string;
  old: CertRef[];
  new: CertRef[];
  steps: EvidenceStep[];
  /** Leaves affected: the serial retired and, once re-minted, the one replacing it. */
  affected: { service: string; oldSerial: string; newSerial?: string; hosts?: string[] }[];
}

/** Evidence ids are generated (procedureId); one read from a record that could name another path is refused. */
const EVIDENCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function evidencePaths(scope: string, id: string): { json: string; md: string } {
  if (!EVIDENCE_ID.test(id) || id.includes('..')) {
    throw new TrellisError(
      'corrupt-store',
      `the evidence id ${JSON.stringify(id.slice(0, 80))} is not one trellis generates: refusing to read a ` +
        `path a record names`,
      { file: `bundles/${scope}/state.yaml`, field: 'evidence', hint: 'restore the file from git history' },
    );
  }
  return { json: `bundles/${scope}/evidence/${id}.json`, md: `bundles/${scope}/evidence/${id}.md` };
}

function serializeEvidence(e: Evidence): string {
  return `${JSON.stringify(e, null, 2)}\n`;
}

function renderEvidenceMarkdown(e: Evidence): string {
  const cert = (c: CertRef) => `- \`${c.fingerprint}\` serial \`${c.serial}\`, ${c.subject}, expires ${c.notAfter}`;
  const lines = [
    `# ${e.kind.replace(/-/g, ' ')}: ${e.scope} (${e.id})`,
    '',
    `- status: **${e.status}**`,
    ...(e.reason ? [`- reason: ${e.reason}`] : []),
    `- started: ${e.started}`,
    `- ended: ${e.ended ?? '(under way)'}`,
    '',
    '## Old',
    ...(e.old.length ? e.old.map(cert) : ['- (none)']),
    '',
    '## New',
    ...(e.new.length ? e.new.map(cert) : ['- (none)']),
    '',
    '## Steps',
    '',
    '| step | at | actor | tool | note |',
    '|---|---|---|---|---|',
    ...e.steps.map((s) => `| ${s.step} | ${s.at} | ${s.actor} | ${s.tool} | ${s.note ?? ''} |`),
    '',
    '## Affected leaves',
    '',
    '| service | old serial | new serial | hosts |',
    '|---|---|---|---|',
    ...e.affected.map(
      (a) =>
        `| ${a.service} | \`${a.oldSerial}\` | ${a.newSerial ? `\`${a.newSerial}\`` : '(not yet re-minted)'} | ` +
        `${a.hosts?.join(', ') ?? ''} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/** Records the leaves a renew re-minted under a procedure; completes it when none is left to replace. */
export function recordRemint(
  e: Evidence,
  minted: { service: string; serial: string }[],
  step: Omit<EvidenceStep, 'step'>,
  completeWhenDone: boolean,
): Evidence {
  const affected = e.affected.map((a) => {
    const m = minted.find((x) => x.service === a.service);
    return m && !a.newSerial ? { ...a, newSerial: m.serial } : a;
  });
  const done = completeWhenDone && affected.every((a) => a.newSerial);
  return {
    ...e,
    affected,
    steps: [...e.steps, { step: 'remint', ...step, note: `${minted.length} leaf(s) re-minted` }],
    ...(done ? { status: 'completed' as const, ended: step.at } : {}),
  };
}

export function certRef(cert: Certificate): CertRef {
  return {
    fingerprint: fingerprint(cert),
    serial: cert.serialNumber,
    subject: cert.subject,
    notAfter: iso(cert.notAfter),
  };
}

/** The JSON and Markdown files of an evidence record, and the ledger's link to them. */
export function evidenceFiles(e: Evidence): { writes: FileWrite[]; link: { evidence: string; sha256: string } } {
  const p = evidencePaths(e.scope, e.id);
  const json = serializeEvidence(e);
  return {
    writes: [
      { path: p.json, content: json },
      { path: p.md, content: renderEvidenceMarkdown(e) },
    ],
    link: { evidence: p.json, sha256: sha256Hex(json) },
  };
}

export function parseEvidence(text: string): Evidence {
  return parseJsonData<Evidence>(text);
}

/** An id for a procedure, sortable by time: `20261122T1000Z-rotation`. */
export function procedureId(now: Date, kind: string): string {
  return `${iso(now).replace(/[-:]/g, '').replace(/00Z$/, 'Z')}-${kind}`;
}

/** A host name as deploy records it (os.hostname() of its runner); anything else read back from a ledger is ignored. */
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/;

/**
 * Where a service's leaf lives, for the evidence's hosts column: an ssh or
 * sealed target names its host; a dir target is a directory on the machine
 * deploy ran on, which only a deploy entry the scope ledger counts (signed)
 * records: `dir:HOST:/path`, or `dir:/path (no signed deploy recorded its host)`.
 */
export function targetHosts(
  counted: { op: string; details: Record<string, unknown> }[],
  service: string,
  targets: DeploySelection[],
): string[] {
  const hostOf = (target: string): string | undefined => {
    for (const e of [...counted].reverse()) {
      if ((e.op !== 'deploy' && e.op !== DEPLOY_RECORD_OP) || !Array.isArray(e.details.targets)) continue;
      for (const t of e.details.targets as Record<string, unknown>[]) {
        if (t && t.service === service && t.target === target && typeof t.host === 'string' && HOST_NAME.test(t.host))
          return t.host;
      }
    }
    return undefined;
  };
  return targets.map((t) => {
    if (t.type !== 'dir') return describeTarget(t);
    const host = hostOf(describeTarget(t));
    return host ? `dir:${host}:${t.path}` : `${describeTarget(t)} (no signed deploy recorded its host)`;
  });
}
