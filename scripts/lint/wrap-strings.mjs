#!/usr/bin/env node
/**
 * Lines at most 120 columns, the formatter's line width: biome breaks code but never a string. Splits a string
 * literal that runs past 120 into a concatenation at a space (`'a b'` becomes `'a ' + 'b'`, the same value), then
 * biome lays the `+` out; a template literal splits only in its text, never inside `${…}`. Literals whose value
 * must stay one token (types, imports, property names, tagged templates) are left as written.
 *
 *   node scripts/lint/wrap-strings.mjs           splits the long literals of the files biome formats, then formats
 *   node scripts/lint/wrap-strings.mjs --check   names every line over 120 columns, and fails if any
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { lintedFiles, ROOT, WIDTH } from './width.mjs';

const LITERALS = new Set([
  ts.SyntaxKind.StringLiteral,
  ts.SyntaxKind.NoSubstitutionTemplateLiteral,
  ts.SyntaxKind.TemplateExpression,
]);

const TEST_CALLS = /^(describe|it|test)(\.(each|skip|only|concurrent|runIf|skipIf)\b.*)?$/s;

/** A test's title: one line, so it reads as the test's name in every report. */
function isTestTitle(node) {
  const p = node.parent;
  return ts.isCallExpression(p) && p.arguments[0] === node && TEST_CALLS.test(p.expression.getText());
}

/** A literal inside another template's `${…}`: split, it would read worse than long. */
function insideTemplate(node) {
  for (let n = node.parent; n; n = n.parent) if (ts.isTemplateSpan(n)) return true;
  return false;
}

/** Where `a + b` reads as the literal did: an operand that binds no tighter than `+`. */
function splittable(node) {
  const p = node.parent;
  if (!p || isTestTitle(node) || insideTemplate(node)) return false;
  switch (p.kind) {
    case ts.SyntaxKind.CallExpression:
    case ts.SyntaxKind.NewExpression:
      return p.arguments?.includes(node) ?? false;
    case ts.SyntaxKind.PropertyAssignment:
    case ts.SyntaxKind.VariableDeclaration:
    case ts.SyntaxKind.PropertyDeclaration:
    case ts.SyntaxKind.Parameter:
    case ts.SyntaxKind.BindingElement:
      return p.initializer === node;
    case ts.SyntaxKind.BinaryExpression:
      return p.operatorToken.kind === ts.SyntaxKind.PlusToken && (p.right === node || p.left === node)
        ? true
        : [ts.SyntaxKind.BarBarToken, ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.EqualsToken].includes(
            p.operatorToken.kind,
          ) && p.right === node;
    case ts.SyntaxKind.ReturnStatement:
    case ts.SyntaxKind.ArrayLiteralExpression:
    case ts.SyntaxKind.ParenthesizedExpression:
    case ts.SyntaxKind.ThrowStatement:
    case ts.SyntaxKind.SpreadElement:
      return true;
    case ts.SyntaxKind.ArrowFunction:
      return p.body === node;
    case ts.SyntaxKind.ConditionalExpression:
      return p.whenTrue === node || p.whenFalse === node;
    default:
      return false;
  }
}

/**
 * Offsets (into the literal's raw text, quotes included) after a space where a split may go: in a template, only
 * outside `${…}`; never after a backslash.
 */
function splitPoints(raw) {
  const points = [];
  let depth = 0;
  for (let i = 1; i < raw.length - 1; i++) {
    const c = raw[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (raw[0] === '`' && c === '$' && raw[i + 1] === '{') {
      depth++;
      i++;
      continue;
    }
    if (depth > 0) {
      if (c === '{') depth++;
      else if (c === '}') depth--;
      continue;
    }
    if (c === ' ' && raw[i + 1] !== ' ') points.push(i + 1);
  }
  return points;
}

/**
 * The file with each splittable literal on a line over the width cut into parts short enough for a line of
 * their own (biome then puts each part on one), or undefined when there is none.
 */
function splitLong(text, fileName) {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const edits = [];
  const visit = (node) => {
    if (LITERALS.has(node.kind) && splittable(node)) {
      const start = node.getStart(sf);
      const { character } = sf.getLineAndCharacterOfPosition(start);
      const lineStart = start - character;
      const lineEnd = text.indexOf('\n', start);
      const lineText = text.slice(lineStart, lineEnd === -1 ? text.length : lineEnd);
      const raw = text.slice(start, node.getEnd());
      if (lineText.length > WIDTH && !raw.includes('\n')) {
        const indent = /^ */.exec(lineText)[0].length + 4;
        const room = WIDTH - indent - 4;
        const q = raw[0];
        const parts = [];
        let rest = raw;
        for (;;) {
          if (rest.length <= room) break;
          const points = splitPoints(rest).filter((p) => p > 8);
          const at = points.filter((p) => p <= room - 1).pop() ?? points[0];
          if (at === undefined || rest.length - at < 8) break;
          parts.push(`${rest.slice(0, at)}${q}`);
          rest = `${q}${rest.slice(at)}`;
        }
        if (parts.length) {
          edits.push({ start, end: node.getEnd(), text: [...parts, rest].join(' + ') });
          return;
        }
      }
    }
    node.forEachChild(visit);
  };
  visit(sf);
  if (!edits.length) return undefined;
  let out = text;
  for (const e of edits.reverse()) out = `${out.slice(0, e.start)}${e.text}${out.slice(e.end)}`;
  return out;
}

/** The lines that hold a test's title (a title may run long). */
function testTitleLines(text, fileName) {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const lines = new Set();
  const visit = (node) => {
    if (LITERALS.has(node.kind) && isTestTitle(node))
      lines.add(sf.getLineAndCharacterOfPosition(node.getStart(sf)).line);
    node.forEachChild(visit);
  };
  visit(sf);
  return lines;
}

/** Every line over the width, as `file:line: N columns` (a test's title may run long). */
function longLines() {
  const long = [];
  for (const rel of lintedFiles()) {
    const text = fs.readFileSync(path.join(ROOT, rel), 'utf8');
    const titles = testTitleLines(text, rel);
    text.split('\n').forEach((l, i) => {
      if (l.length > WIDTH && !titles.has(i)) long.push(`${rel}:${i + 1}: ${l.length} columns`);
    });
  }
  return long;
}

/** Splits every long literal, then biome lays the parts out; a part still too long is split on the next pass. */
function splitAll(passes = 3) {
  for (let pass = 0; pass < passes; pass++) {
    const changed = [];
    for (const rel of lintedFiles()) {
      const file = path.join(ROOT, rel);
      const next = splitLong(fs.readFileSync(file, 'utf8'), rel);
      if (next === undefined) continue;
      fs.writeFileSync(file, next);
      changed.push(file);
    }
    if (!changed.length) return;
    execFileSync('pnpm', ['exec', 'biome', 'format', '--write', ...changed], { cwd: ROOT });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!process.argv.includes('--check')) splitAll();
  else {
    const long = longLines();
    if (long.length) {
      process.stderr.write(`${long.join('\n')}\nlines over ${WIDTH} columns: node scripts/lint/wrap-strings.mjs\n`);
      process.exit(1);
    }
  }
}
