#!/usr/bin/env node
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { lintedFiles, ROOT, WIDTH } from './width.mjs';

const DIRECTIVE = /^(biome-ignore|@ts-|eslint-|#|!)/;

/** The [start, end) ranges of every comment in `text`. */
function commentRanges(text, fileName) {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const seen = new Map();
  const add = (ranges) => ranges?.forEach((r) => seen.set(r.pos, r));
  const visit = (node) => {
    add(ts.getLeadingCommentRanges(text, node.getFullStart()));
    add(ts.getTrailingCommentRanges(text, node.getEnd()));
    node.getChildren(sf).forEach(visit);
  };
  visit(sf);
  return [...seen.values()];
}

/**
 * `words` filled into lines of at most `WIDTH` columns, each starting with `prefix`. No line starts with `@`
 * (JSDoc would read it as a tag): such a word takes the word before it along.
 */
function fill(prefix, words) {
  const lines = [[]];
  const width = (ws) => prefix.length + ws.join(' ').length;
  for (const w of words) {
    const last = lines[lines.length - 1];
    if (last.length && width([...last, w]) > WIDTH) {
      lines.push(w.startsWith('@') && last.length > 1 ? [last.pop(), w] : [w]);
    } else last.push(w);
  }
  return lines.map((ws) => `${prefix}${ws.join(' ')}`);
}

/** The file with its long comment lines rewrapped (not those after code, nor directives). */
function wrapComments(text, fileName) {
  const lines = text.split('\n');
  const starts = [];
  for (let i = 0, at = 0; i < lines.length; at += lines[i].length + 1, i++) starts.push(at);
  const inComment = new Array(lines.length).fill(undefined);
  for (const r of commentRanges(text, fileName)) {
    for (let i = 0; i < lines.length; i++) {
      const s = starts[i];
      const e = s + lines[i].length;
      if (e > r.pos && s < r.end) inComment[i] = { kind: r.kind, whole: text.slice(s, r.pos).trim() === '' };
    }
  }
  const out = [];
  lines.forEach((line, i) => {
    const c = inComment[i];
    if (line.length <= WIDTH || !c) return out.push(line);
    let m;
    if (c.kind === ts.SyntaxKind.SingleLineCommentTrivia && c.whole && (m = /^(\s*\/\/ )(\S.*)$/.exec(line))) {
      if (!DIRECTIVE.test(m[2])) return out.push(...fill(m[1], m[2].split(/\s+/)));
    } else if (c.kind === ts.SyntaxKind.MultiLineCommentTrivia && (m = /^(\s*)\/\*\* (.*\S) \*\/$/.exec(line))) {
      return out.push(`${m[1]}/**`, ...fill(`${m[1]} * `, m[2].split(/\s+/)), `${m[1]} */`);
    } else if (c.kind === ts.SyntaxKind.MultiLineCommentTrivia && (m = /^(\s* \* )(\S.*)$/.exec(line))) {
      return out.push(...fill(m[1], m[2].split(/\s+/)));
    }
    out.push(line);
  });
  return { text: out.join('\n') };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  const long = [];
  for (const rel of lintedFiles()) {
    const file = path.join(ROOT, rel);
    const text = fs.readFileSync(file, 'utf8');
    const r = wrapComments(text, rel);
    if (check && r.text !== text)
      long.push(`${rel}: comments over ${WIDTH} columns (node scripts/lint/wrap-comments.mjs)`);
    else if (!check && r.text !== text) fs.writeFileSync(file, r.text);
  }
  if (check && long.length) {
    process.stderr.write(`${long.join('\n')}\n`);
    process.exit(1);
  }
}
