/**
 * A linear reader for the plain block YAML trellis writes (`toYaml`: records
 * such as leaves.yaml and state.yaml) and people usually write (a scope file
 * of `svc: {}` lines). The `yaml` package takes ~70 µs a line and most of a
 * command's time at 10k services; this takes a fraction of that.
 *
 * It is an accelerator, never a second grammar: it accepts only a strict
 * subset whose meaning is the same under the `yaml` package (block mappings
 * and sequences indented by spaces, a sequence's mapping items in the compact
 * `- key: value` form (a scope file's deploy targets), plain scalars that YAML's core schema
 * reads as strings, quoted scalars without escapes, `{}` and `[]`), and
 * returns undefined for anything else — a duplicate key, an anchor, a tag, a
 * comment after a value, a number — so the caller parses that text with the
 * `yaml` package and its checks, which name the fault.
 */

/** Plain scalars of characters YAML gives no meaning to, starting with one that starts no indicator. */
const PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./:+=@-]*$/;
const KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** What YAML 1.2's core schema reads as a number, boolean or null: integers, floats, ±inf and NaN, null, bools. */
const CORE_SCHEMA_SCALARS = [
  /[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+/,
  /[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?/,
  /[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN/,
  /~|[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE/,
];
/** Never taken as a string here. */
const NOT_A_STRING = new RegExp(`^(?:${CORE_SCHEMA_SCALARS.map((r) => r.source).join('|')})$`);
const MAX_DEPTH = 32;

/**
 * `item`: a `- ` that opens a compact mapping, whose first key follows on the same line (tokenized as the next Line, 2
 * columns in).
 */
interface Line {
  indent: number;
  key?: string;
  value?: string;
  item?: true;
}

const NO = Symbol('not plain');

function scalar(raw: string): unknown {
  if (raw === '{}') return {};
  if (raw === '[]') return [];
  const q = raw[0];
  if (q === '"' || q === "'") {
    const inner = raw.slice(1, -1);
    if (
      raw.length < 2 ||
      raw.at(-1) !== q ||
      inner.includes(q) ||
      (q === '"' && inner.includes('\\')) ||
      /[\0-\x1f\x7f]/.test(inner)
    )
      return NO;
    return inner;
  }
  if (!PLAIN.test(raw) || raw.endsWith(':') || NOT_A_STRING.test(raw)) return NO;
  return raw;
}

function tokenize(text: string): Line[] | undefined {
  const out: Line[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let indent = 0;
    while (line.charCodeAt(indent) === 32) indent++;
    const rest = line.slice(indent);
    if (rest === '' || rest[0] === '#') {
      if (rest === '' || /[\0-\x1f\x7f]/.test(rest)) return undefined;
      continue;
    }
    if (rest.endsWith(' ')) return undefined;
    if (rest.startsWith('- ')) {
      // `- key: value` (or `- key:`) opens a mapping whose keys sit 2 columns in; anything else after the dash is a
      // scalar item.
      const m = COMPACT_KEY.exec(rest.slice(2));
      if (m) {
        out.push({ indent, item: true });
        if (!keyLine(indent + 2, rest.slice(2), out)) return undefined;
      } else out.push({ indent, value: rest.slice(2) });
      continue;
    }
    if (!keyLine(indent, rest, out)) return undefined;
  }
  return out;
}

/** A key at the start of a sequence item: a key-shaped run, then `:` with a space or the end of the line. */
const COMPACT_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.-]*:(?: |$)/;

/** `key: value` or `key:` at `indent`; false when it is outside the subset. */
function keyLine(indent: number, rest: string, out: Line[]): boolean {
  const colon = rest.indexOf(':');
  if (colon <= 0) return false;
  const key = rest.slice(0, colon);
  // A key YAML reads as a number, boolean or null becomes another string in toJS (1e3 → "1000", null → ""): left to the
  // full parser.
  if (!KEY.test(key) || NOT_A_STRING.test(key)) return false;
  const after = rest.slice(colon + 1);
  if (after === '') out.push({ indent, key });
  else if (after[0] === ' ' && after[1] !== ' ') out.push({ indent, key, value: after.slice(1) });
  else return false;
  return true;
}

/** The value of `text` as the yaml package would read it, or undefined when the text is outside the subset. */
export function readPlainYaml(text: string): unknown {
  if (text.includes('\r') || text.includes('\t') || text.charCodeAt(0) === 0xfeff) return undefined;
  const lines = tokenize(text);
  if (!lines) return undefined;
  if (!lines.length) return undefined;
  let i = 0;
  const block = (indent: number, depth: number): unknown => {
    if (depth > MAX_DEPTH) return NO;
    const first = lines[i]!;
    if (first.key === undefined) {
      const seq: unknown[] = [];
      while (i < lines.length && lines[i]!.indent === indent) {
        const l = lines[i]!;
        if (l.key !== undefined) return NO;
        i++;
        // A compact mapping item: its block starts on the token after the dash, 2 columns in.
        const v = l.item ? block(indent + 2, depth + 1) : scalar(l.value!);
        if (v === NO) return NO;
        seq.push(v);
      }
      return i < lines.length && lines[i]!.indent > indent ? NO : seq;
    }
    const map: Record<string, unknown> = {};
    const seen = new Set<string>();
    while (i < lines.length && lines[i]!.indent === indent) {
      const l = lines[i]!;
      if (l.key === undefined || seen.has(l.key) || l.key === '__proto__') return NO;
      seen.add(l.key);
      i++;
      let v: unknown;
      if (l.value !== undefined) v = scalar(l.value);
      else if (i < lines.length && lines[i]!.indent > indent) v = block(lines[i]!.indent, depth + 1);
      else return NO; // an empty value is null: rare, left to the full parser
      if (v === NO) return NO;
      map[l.key] = v;
    }
    return i < lines.length && lines[i]!.indent > indent ? NO : map;
  };
  if (lines[0]!.indent !== 0) return undefined;
  const v = block(0, 0);
  return v === NO || i < lines.length ? undefined : v;
}

/** True when writePlainYaml writes `s` as a value unquoted (else it declines). */
export const plainString = (s: string) => PLAIN.test(s) && !s.endsWith(':') && !NOT_A_STRING.test(s);
/** True when writePlainYaml writes `k` as a key unquoted. */
export const plainKey = (k: string) => KEY.test(k) && !NOT_A_STRING.test(k) && k !== '__proto__';

/**
 * The same bytes `toYaml` (the yaml package's stringify, indent 2, no line
 * folding) writes, for a value of mappings, lists of strings and strings that
 * need no quoting; undefined for anything else, which the caller writes with
 * the yaml package. Linear: the yaml package's stringify takes ~0.3 ms a
 * leaves.yaml record (22 s for 60,000).
 */
export function writePlainYaml(value: unknown): string | undefined {
  const out: string[] = [];
  const map = (o: Record<string, unknown>, pad: string): boolean => {
    for (const k of Object.keys(o)) {
      const v = o[k];
      if (v === undefined) continue;
      if (!plainKey(k)) return false;
      if (typeof v === 'string') {
        if (!plainString(v)) return false;
        out.push(`${pad}${k}: ${v}\n`);
      } else if (Array.isArray(v)) {
        if (!v.length) out.push(`${pad}${k}: []\n`);
        else {
          out.push(`${pad}${k}:\n`);
          for (const x of v) {
            if (typeof x !== 'string' || !plainString(x)) return false;
            out.push(`${pad}  - ${x}\n`);
          }
        }
      } else if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
        const keys = Object.keys(v).filter((x) => (v as Record<string, unknown>)[x] !== undefined);
        if (!keys.length) out.push(`${pad}${k}: {}\n`);
        else {
          out.push(`${pad}${k}:\n`);
          if (!map(v as Record<string, unknown>, `${pad}  `)) return false;
        }
      } else return false;
    }
    return true;
  };
  if (!value || typeof value !== 'object' || Array.isArray(value) || Object.getPrototypeOf(value) !== Object.prototype)
    return undefined;
  if (!Object.values(value).some((v) => v !== undefined)) return undefined;
  return map(value as Record<string, unknown>, '') ? out.join('') : undefined;
}
