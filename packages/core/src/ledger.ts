/**
 * Hash-chained ledgers (`bundles/<scope>/ledger.jsonl`, `bundles/root/ledger.jsonl`):
 * one JSON line per operation, each carrying the hash of the line before, so
 * an edited, dropped or reordered entry breaks the chain.
 */
import { sha256Hex } from './crypto.js';
import { TrellisError } from './errors.js';

export interface Created {
  kind: 'root' | 'intermediate' | 'leaf' | 'identity' | 'bundle';
  fingerprint: string;
  serial?: string;
  subject?: string;
  notAfter?: string;
}

export interface LedgerEntry {
  seq: number;
  at: string;
  op: string;
  actor: string;
  details: Record<string, unknown>;
  created: Created[];
  prev: string | null;
  hash: string;
}

export type LedgerDraft = Pick<LedgerEntry, 'op' | 'at' | 'actor'> & Partial<Pick<LedgerEntry, 'details' | 'created'>>;

function isEntry(e: unknown): e is LedgerEntry {
  const o = e as Record<string, unknown>;
  return !!o && typeof o === 'object' && !Array.isArray(o) && typeof o.seq === 'number' && typeof o.at === 'string' && typeof o.op === 'string'
    && typeof o.actor === 'string' && typeof o.hash === 'string' && (o.prev === null || typeof o.prev === 'string')
    && !!o.details && typeof o.details === 'object' && Array.isArray(o.created);
}

/** JSON with keys sorted at every depth: the bytes that get hashed. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function entryHash(e: Omit<LedgerEntry, 'hash'>): string {
  return sha256Hex(canonicalJson(e));
}

export function parseLedger(text: string): { entries: LedgerEntry[]; problems: string[] } {
  const entries: LedgerEntry[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      problems.push(`line ${i + 1}: not JSON`);
      return;
    }
    if (!isEntry(e)) problems.push(`line ${i + 1}: not a ledger entry`);
    else entries.push(e);
  });
  return { entries, problems };
}

/** Every break in the chain; empty when each entry hashes right and links to the one before. */
export function ledgerProblems(text: string): string[] {
  const { entries, problems } = parseLedger(text);
  let prev: string | null = null;
  entries.forEach((e, i) => {
    const { hash, ...body } = e;
    if (e.seq !== i + 1) problems.push(`entry ${i + 1}: seq is ${e.seq}`);
    if (e.prev !== prev) problems.push(`entry ${i + 1}: prev does not match the hash of entry ${i}`);
    if (entryHash(body) !== hash) problems.push(`entry ${i + 1}: hash does not match its contents (edited?)`);
    prev = hash;
  });
  return problems;
}

export function ledgerHead(text: string): LedgerEntry | undefined {
  return parseLedger(text).entries.at(-1);
}

/** The ledger text with `draft` appended and chained to the current head. Refuses to extend a broken chain. */
export function appendToLedger(text: string, draft: LedgerDraft, file = 'ledger.jsonl'): { text: string; entry: LedgerEntry } {
  const problems = ledgerProblems(text);
  if (problems.length) {
    throw new TrellisError('corrupt-store', `the ledger's chain is broken (${problems[0]}): refusing to extend it`, { file, hint: 'restore the ledger from git history and rerun' });
  }
  const head = ledgerHead(text);
  const body: Omit<LedgerEntry, 'hash'> = {
    seq: (head?.seq ?? 0) + 1,
    at: draft.at,
    op: draft.op,
    actor: draft.actor,
    details: draft.details ?? {},
    created: draft.created ?? [],
    prev: head?.hash ?? null,
  };
  const entry = { ...body, hash: entryHash(body) };
  return { text: `${text}${canonicalJson(entry)}\n`, entry };
}

/** Every fingerprint the ledger says was created. */
export function ledgerFingerprints(text: string): Set<string> {
  return new Set(parseLedger(text).entries.flatMap((e) => e.created.map((c) => c.fingerprint)));
}
