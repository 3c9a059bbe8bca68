/**
 * Input is data, never a key into our objects. Everything trellis parses from
 * a file (YAML, JSON) becomes arrays and null-prototype records here, so a
 * lookup keyed by input (an allow-list entry, a scope, a recipient) finds only
 * what the file holds: `constructor`, `toString` or `__proto__` find nothing.
 */

/** A record with no prototype: what every input-keyed lookup table is. */
export type Dict<T> = Record<string, T>;

/** An empty null-prototype record, or one holding `entries`. */
export function dict<T>(entries: Iterable<readonly [string, T]> = []): Dict<T> {
  const out = Object.create(null) as Dict<T>;
  for (const [k, v] of entries) out[k] = v;
  return out;
}

/** `value` with every plain object, at any depth, copied into a null-prototype record. */
export function dataOnly<T = unknown>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => dataOnly(v)) as T;
  if (value === null || typeof value !== 'object') return value;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // Dates and other class instances stay as they are
  return dict(Object.entries(value).map(([k, v]) => [k, dataOnly(v)] as const)) as T;
}

/** JSON.parse, as data. */
export const parseJsonData = <T = unknown>(text: string): T => dataOnly(JSON.parse(text) as T);

/** The value under `key` only if the record holds it itself: for tables a key from input reaches. */
export function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}
