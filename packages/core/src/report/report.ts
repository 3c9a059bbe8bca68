/** Plain-text renderings of findings and status, shared by both CLIs. */
import type { Finding } from '../verify/verify.js';
import type { MeshStatus } from '../procedures/plan.js';

const MARK = { error: '✗', warning: '!', pending: '…', ok: '✓' } as const;

export function renderFindings(findings: Finding[]): string {
  const order = { error: 0, warning: 1, pending: 2, ok: 3 } as const;
  const sorted = [...findings].sort((a, b) => order[a.level] - order[b.level]);
  const lines = sorted.map(
    (f) =>
      `${MARK[f.level]} ${f.level.padEnd(7)} ${f.check.padEnd(11)} ` +
      `${f.scope ? `[${f.scope}] ` : ''}${f.message}${f.file ? `  (${f.file})` : ''}`,
  );
  const count = (l: Finding['level']) => findings.filter((f) => f.level === l).length;
  lines.push(`${count('error')} error(s), ${count('warning')} warning(s), ${count('pending')} pending`);
  return `${lines.join('\n')}\n`;
}

/** The mark after a certificate whose notBefore is still ahead. */
const notYet = (validFrom: string | undefined) => (validFrom ? `  NOT YET VALID: valid from ${validFrom}` : '');

export function renderStatus(s: MeshStatus): string {
  const lines = [`mesh ${s.mesh} (trust domain ${s.trustDomain}) as of ${s.now}`];
  if (s.root) {
    const phase = s.root.phase !== 'steady' ? `  [${s.root.phase}]` : '';
    lines.push(
      `root  ${s.root.subject}  expires ${s.root.notAfter}  ` +
        `${s.root.fingerprint}${notYet(s.root.notValidBefore)}${phase}`,
    );
  } else lines.push('root  (none)');
  for (const sc of s.scopes) {
    const i = sc.intermediate;
    const tier = i
      ? `intermediate expires ${i.notAfter}  ${i.fingerprint}${notYet(i.notValidBefore)}`
      : 'PENDING: awaiting its offline intermediate ceremony';
    lines.push(`scope ${sc.scope} (${sc.kind})  ${tier}`);
    if (i) {
      const open = sc.gate && sc.gate.at <= s.now ? ' (open: the next renew advances it)' : '';
      const held = sc.fleet?.waiting.length && open ? ' (its time has come; held by the fleet)' : open;
      lines.push(`  phase ${sc.phase}${sc.gate ? `: ${sc.gate.gate} gate opens ${sc.gate.at}${held}` : ''}`);
      if (sc.fleet?.waiting.length) lines.push(`  the fleet gate waits for: ${sc.fleet.waiting.join('; ')}`);
      if (sc.fleet?.waived.length) lines.push(`  waived by the custodian: ${sc.fleet.waived.join('; ')}`);
      if (sc.fleet?.unproven.length)
        lines.push(`  not proven by a probe (time gates only): ${sc.fleet.unproven.join(', ')}`);
      if (sc.fleet?.refusing.length)
        lines.push(
          `  REFUSING clients of the new intermediate: ${sc.fleet.refusing.join('; ')}; roll back: trellis-root ` +
            `rotate intermediate ${sc.scope} --abort`,
        );
    }
    for (const l of sc.leaves) {
      const dates = l.notAfter ? `expires ${l.notAfter}  renew at ${l.renewAt}` : '';
      lines.push(`  ${l.service.padEnd(20)} ${l.state.padEnd(13)} ${dates}`.trimEnd());
    }
  }
  return `${lines.join('\n')}\n`;
}
