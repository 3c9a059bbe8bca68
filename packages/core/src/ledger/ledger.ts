/**
 * Hash-chained ledgers (`bundles/<scope>/ledger.jsonl`, `bundles/root/ledger.jsonl`):
 * one JSON line per operation, each carrying the hash of the line before, so
 * an edited, dropped or reordered entry breaks the chain.
 */
import { sha256Hex } from '../crypto/crypto.js';
import { TrellisError } from '../model/errors.js';
import { signedPayload, type EntrySigner, type LedgerSigner } from './ledger-signature.js';
import { parseJsonData } from '../model/data.js';

export interface Created {
  kind: 'root' | 'intermediate' | 'leaf' | 'identity' | 'bundle';
  fingerprint: string;
  serial?: string;
  subject?: string;
  notAfter?: string;
  /** Leaves, since signed ledgers: what leaves.yaml claims, so verify can prove it. */
  service?: string;
  notBefore?: string;
  issuer?: string;
  issuerKey?: string;
  uris?: string[];
  dns?: string[];
}

export interface LedgerEntry {
  seq: number;
  at: string;
  op: string;
  actor: string;
  details: Record<string, unknown>;
  created: Created[];
  prev: string | null;
  /** Who signed it (hashed); absent on entries written before ledgers were signed. */
  signer?: EntrySigner;
  hash: string;
  /** base64 signature over the hash (see ledger-signature.ts); not part of the hash. */
  signature?: string;
}

export type LedgerDraft = Pick<LedgerEntry, 'op' | 'at' | 'actor'> & Partial<Pick<LedgerEntry, 'details' | 'created'>>;

function isEntry(e: unknown): e is LedgerEntry {
  const o = e as Record<string, unknown>;
  return (
    !!o &&
    typeof o === 'object' &&
    !Array.isArray(o) &&
    typeof o.seq === 'number' &&
    typeof o.at === 'string' &&
    typeof o.op === 'string' &&
    typeof o.actor === 'string' &&
    typeof o.hash === 'string' &&
    (o.prev === null || typeof o.prev === 'string') &&
    !!o.details &&
    typeof o.details === 'object' &&
    Array.isArray(o.created) &&
    (o.signature === undefined || typeof o.signature === 'string') &&
    (o.signer === undefined || isSigner(o.signer))
  );
}

function isSigner(s: unknown): boolean {
  const o = s as Record<string, unknown>;
  return (
    !!o &&
    typeof o === 'object' &&
    typeof o.keyId === 'string' &&
    typeof o.fingerprint === 'string' &&
    (o.certificate === undefined || typeof o.certificate === 'string')
  );
}

/** JSON with keys sorted at every depth: the bytes that get hashed. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function entryHash(e: Omit<LedgerEntry, 'hash' | 'signature'>): string {
  return sha256Hex(canonicalJson(e));
}

/** The first entry after a signed one that carries no signature (appended outside trellis), if any. */
export function unsignedAfterSigned(entries: LedgerEntry[]): LedgerEntry | undefined {
  const first = entries.findIndex((e) => e.signer || e.signature);
  return first < 0 ? undefined : entries.slice(first).find((e) => !e.signer || !e.signature);
}

function readLedger(text: string): { entries: LedgerEntry[]; problems: string[] } {
  const entries: LedgerEntry[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let e: unknown;
    try {
      e = parseJsonData(line);
    } catch {
      problems.push(`line ${i + 1}: not JSON`);
      return;
    }
    if (!isEntry(e)) problems.push(`line ${i + 1}: not a ledger entry`);
    else entries.push(e);
  });
  return { entries, problems };
}

/**
 * A command reads each ledger in several places (verify's chain check, the
 * trust walk, the fingerprints each check looks up, the append): each text
 * is parsed and hashed once. Entries are shared between callers: read-only.
 */
const memo = new Map<string, { parsed: { entries: LedgerEntry[]; problems: string[] }; chain?: string[] }>();
function memoOf(text: string) {
  let m = memo.get(text);
  if (!m) {
    if (memo.size >= 64) memo.delete(memo.keys().next().value!);
    memo.set(text, (m = { parsed: readLedger(text) }));
  }
  return m;
}

export function parseLedger(text: string): { entries: LedgerEntry[]; problems: string[] } {
  const { entries, problems } = memoOf(text).parsed;
  return { entries: [...entries], problems: [...problems] };
}

/** Every break in the chain; empty when each entry hashes right and links to the one before. */
export function ledgerProblems(text: string): string[] {
  const m = memoOf(text);
  if (!m.chain) {
    const { entries } = m.parsed;
    const problems = [...m.parsed.problems];
    let prev: string | null = null;
    entries.forEach((e, i) => {
      const { hash, signature: _sig, ...body } = e;
      if (e.seq !== i + 1) problems.push(`entry ${i + 1}: seq is ${e.seq}`);
      if (e.prev !== prev) problems.push(`entry ${i + 1}: prev does not match the hash of entry ${i}`);
      if (entryHash(body) !== hash) problems.push(`entry ${i + 1}: hash does not match its contents (edited?)`);
      prev = hash;
    });
    m.chain = problems;
  }
  return [...m.chain];
}

export function ledgerHead(text: string): LedgerEntry | undefined {
  return parseLedger(text).entries.at(-1);
}

/**
 * The ledger text with `draft` appended, chained to the current head and
 * signed by `signer` (null only for tests building legacy ledgers). Refuses to
 * extend a broken chain, and a signed ledger that someone extended unsigned.
 */
export function appendToLedger(
  text: string,
  draft: LedgerDraft,
  file: string,
  signer: LedgerSigner | null,
): { text: string; entry: LedgerEntry } {
  const problems = ledgerProblems(text);
  if (problems.length) {
    throw new TrellisError('corrupt-store', `the ledger's chain is broken (${problems[0]}): refusing to extend it`, {
      file,
      hint: 'restore the ledger from git history and rerun',
    });
  }
  const { entries } = parseLedger(text);
  const forged = unsignedAfterSigned(entries);
  if (forged) {
    throw new TrellisError(
      'corrupt-store',
      `entry ${forged.seq} is unsigned but follows signed entries (appended outside trellis?): refusing to ` +
        `sign on top of it`,
      {
        file,
        field: `seq ${forged.seq}`,
        hint:
          'remove the entries a pull request appended (restore the ledger from git), ' +
          'run trellis-ci verify, and rerun',
      },
    );
  }
  if (!signer && entries.some((e) => e.signer))
    throw new TrellisError('corrupt-store', 'the ledger is signed: an unsigned entry cannot be appended', { file });
  const head = entries.at(-1);
  // The first entry a key signs in this ledger carries its certificate, so it stays verifiable once the certificate
  // leaves the store.
  const known = signer && entries.some((e) => e.signer?.fingerprint === signer.fingerprint && e.signer.certificate);
  const body: Omit<LedgerEntry, 'hash' | 'signature'> = {
    seq: (head?.seq ?? 0) + 1,
    at: draft.at,
    op: draft.op,
    actor: draft.actor,
    details: draft.details ?? {},
    created: draft.created ?? [],
    prev: head?.hash ?? null,
    ...(signer
      ? {
          signer: {
            keyId: signer.keyId,
            fingerprint: signer.fingerprint,
            ...(known ? {} : { certificate: signer.certificate }),
          },
        }
      : {}),
  };
  const hash = entryHash(body);
  const entry: LedgerEntry = {
    ...body,
    hash,
    ...(signer ? { signature: Buffer.from(signer.sign(signedPayload(hash))).toString('base64') } : {}),
  };
  return { text: `${text}${canonicalJson(entry)}\n`, entry };
}

/** Every fingerprint the ledger says was created. */
export function ledgerFingerprints(text: string): Set<string> {
  return new Set(parseLedger(text).entries.flatMap((e) => e.created.map((c) => c.fingerprint)));
}
