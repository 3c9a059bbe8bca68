/**
 * The custody rule lives in one place: a reviewer reads `packages/core/src/custody/` and has every refusal that
 * raises a `custody-*` reason. The shells and the other rule folders find facts and call in; they never raise one.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/cli.js';

const CUSTODY = 'packages/core/src/custody/';
/** The table of reasons names them; it raises nothing. */
const TABLE = 'packages/core/src/model/errors.ts';

/** Every `custody-*` string literal in the sources, as `file:line`. */
function custodyReasons(): { at: string; file: string }[] {
  const out: { at: string; file: string }[] = [];
  for (const pkg of fs.readdirSync(path.join(REPO, 'packages'))) {
    const src = path.join(REPO, 'packages', pkg, 'src');
    if (!fs.existsSync(src)) continue;
    for (const f of fs.readdirSync(src, { recursive: true }) as string[]) {
      if (!f.endsWith('.ts')) continue;
      const file = path.join('packages', pkg, 'src', f);
      const text = fs.readFileSync(path.join(REPO, file), 'utf8');
      const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && /^custody-/.test(node.text))
          out.push({ file, at: `${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}` });
        node.forEachChild(visit);
      };
      visit(sf);
    }
  }
  return out;
}

describe('custody refusals', () => {
  it('are raised only in packages/core/src/custody/ (every other module calls a function there)', () => {
    const found = custodyReasons();
    // The scan sees the refusals where they live, so an empty list outside is not a scan that found nothing.
    expect(found.filter((r) => r.file.startsWith(CUSTODY)).length).toBeGreaterThan(20);
    const outside = found.filter((r) => !r.file.startsWith(CUSTODY) && r.file !== TABLE).map((r) => r.at);
    expect(outside).toEqual([]);
  });
});
