/**
 * `verify --format markdown`: the comment a CI job posts on a pull request.
 * What is pending, and for every scope awaiting its ceremony exactly what the
 * ceremony will sign (the summary `trellis-root intermediate` shows too).
 */
import { pendingScopes, renderCeremonySummary } from '../rotation/ceremony-plan.js';
import type { Mesh } from '../model/mesh.js';
import { iso } from '../model/time.js';
import { worstLevel, type Finding } from './finding.js';

const MARK = { error: '❌', warning: '⚠️', pending: '⏳', ok: '✅' } as const;

/** Markdown table cells hold no pipe or newline. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderVerifyMarkdown(mesh: Mesh, findings: Finding[], now: Date): string {
  const count = (l: Finding['level']) => findings.filter((f) => f.level === l).length;
  const worst = worstLevel(findings);
  const out = [
    `### ${MARK[worst]} trellis verify: ${count('error')} error(s), ${count('warning')} warning(s), ` +
      `${count('pending')} pending`,
    '',
    `Mesh \`${mesh.config.mesh}\` (trust domain \`${mesh.config.trustDomain}\`), as of ${iso(now)}.`,
    '',
  ];
  const pending = pendingScopes(mesh);
  if (pending.length) {
    out.push(
      `**Pending the offline ceremony**: ${pending.map((s) => `\`${s}\``).join(', ')}. After merging, the ` +
        `custodian runs \`trellis-root intermediate --pending\`.`,
      '',
    );
    out.push(renderCeremonySummary(mesh, pending, now).trimEnd(), '');
  }
  const notable = findings.filter((f) => f.level !== 'ok');
  if (notable.length) {
    out.push('| | level | check | scope | finding | file |', '|---|---|---|---|---|---|');
    for (const f of notable)
      out.push(
        `| ${MARK[f.level]} | ${f.level} | ${f.check} | ${f.scope ?? ''} | ${cell(f.message)} | ` +
          `${f.file ? `\`${cell(f.file)}\`` : ''} |`,
      );
    out.push('');
  }
  if (count('ok')) {
    out.push(`<details><summary>${count('ok')} check(s) passed</summary>`, '');
    for (const f of findings.filter((x) => x.level === 'ok'))
      out.push(`- ${f.check}${f.scope ? ` [${f.scope}]` : ''}: ${cell(f.message)}`);
    out.push('', '</details>');
  }
  return `${out.join('\n')}\n`;
}
