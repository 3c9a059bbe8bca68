#!/usr/bin/env node
/**
 * Lookups keyed by input: every `table[key]` in the packages' sources whose
 * key is a string that is not a literal and whose table is a plain record (a
 * string index signature). Such a lookup finds `constructor` or `__proto__` on
 * an ordinary object, so each must be on a null-prototype record (data.ts
 * `dict`, `dataOnly`), a Map, or go through `own()`. The sites that exist were
 * each read and judged safe, and are listed in lookups.baseline; a new one
 * fails (tests/lint-lookups.test.ts) until it is made safe or, once judged,
 * added there.
 *
 *   node scripts/lint/lookups.mjs            prints every site as "file<TAB>expression"
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PACKAGES = ['core', 'agent', 'ci', 'offline', 'drill'];

/** The sites in `fileNames` (only those under `under`), type-checked with `options`. */
export function scan(fileNames, options, under, projectReferences) {
  const program = ts.createProgram({ rootNames: fileNames, options, projectReferences });
  const checker = program.getTypeChecker();
  const isString = (t) =>
    Boolean(t.flags & ts.TypeFlags.String) || (t.isUnion() && t.types.some((x) => x.flags & ts.TypeFlags.String));
  const out = [];
  for (const sf of program.getSourceFiles()) {
    if (!sf.fileName.startsWith(under)) continue;
    const visit = (node) => {
      if (ts.isElementAccessExpression(node)) {
        const arg = node.argumentExpression;
        const literal = ts.isStringLiteral(arg) || ts.isNumericLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg);
        const table = checker.getTypeAtLocation(node.expression);
        if (
          !literal &&
          isString(checker.getTypeAtLocation(arg)) &&
          table.getStringIndexType() &&
          !checker.isArrayLikeType(table)
        ) {
          out.push(`${path.relative(ROOT, sf.fileName)}\t${node.getText().replace(/\s+/g, ' ')}`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

/** Every site in the packages' sources, sorted. */
export function lookupSites() {
  const out = [];
  for (const pkg of PACKAGES) {
    const file = path.join(ROOT, 'packages', pkg, 'tsconfig.json');
    const cfg = ts.getParsedCommandLineOfConfigFile(
      file,
      {},
      {
        ...ts.sys,
        onUnRecoverableConfigFileDiagnostic: (d) => {
          throw new Error(String(d.messageText));
        },
      },
    );
    out.push(...scan(cfg.fileNames, cfg.options, path.join(ROOT, 'packages', pkg, 'src'), cfg.projectReferences));
  }
  return out.sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.stdout.write(`${lookupSites().join('\n')}\n`);
