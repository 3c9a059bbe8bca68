/**
 * Every deploy on the record, in a pipeline whose delivering step holds no
 * key: the step that holds the CI identity signs, in each scope's ledger, a
 * `deploy-record` entry naming what is about to be deployed (each target's
 * release digest); the keyless step ships a release only when it matches the
 * newest such entry the ledger counts. Each target's outcome stays in that
 * step's own output: a line it wrote into the repository would be unsigned,
 * a claim any pull request could forge.
 */
import { sha256Hex } from '../crypto/crypto.js';
import { canonicalJson, type LedgerEntry } from './ledger.js';
import type { Release } from '../model/mesh.js';

export const DEPLOY_RECORD_OP = 'deploy-record';

/** What a deploy-record entry names for one target. */
export interface RecordedTarget {
  service: string;
  /** describeTarget's text. */
  target: string;
  /** `sha256:` of the release (releaseDigest). */
  release: string;
  /**
   * `sha256:` of its trust part alone (trustDigest): a later trust-only release of the same trust is on the record too.
   */
  trust?: string;
}

/**
 * Files holding the private key: left out of the digest (the certificate in it binds the key; deploy checks they
 * match).
 */
const KEY_FILES = new Set(['key.pem', 'chain-and-key.pem']);

/**
 * `sha256:<hex>` over the release's files by name, key-bearing files left out: the same release gives the same digest
 * on any runner.
 */
export function releaseDigest(r: Release): string {
  const files = Object.fromEntries(
    Object.entries(r).filter(([name, content]) => content !== undefined && !KEY_FILES.has(name)),
  );
  return `sha256:${sha256Hex(canonicalJson(files))}`;
}

const LEAF_FILES = new Set(['cert.pem', 'key.pem', 'chain.pem', 'chain-and-key.pem']);

/** `sha256:<hex>` of the release without its leaf: the trust bundles and CRLs a trust-only deploy ships. */
function trustDigest(r: Release): string {
  return releaseDigest(Object.fromEntries(Object.entries(r).filter(([name]) => !LEAF_FILES.has(name))));
}

/** The entry a target's release is recorded by: its digest, and its trust part's. */
export function recordFor(service: string, target: string, r: Release): RecordedTarget {
  return { service, target, release: releaseDigest(r), trust: trustDigest(r) };
}

/** Whether `r` is on the record: the release recorded, or, carrying no leaf, the trust part of the release recorded. */
export function onRecord(rec: RecordedTarget | undefined, r: Release): boolean {
  if (!rec) return false;
  return rec.release === releaseDigest(r) || (r['cert.pem'] === undefined && rec.trust === trustDigest(r));
}

const keyOf = (service: string, target: string) => `${service}\n${target}`;

/** The newest recorded release of each target, from the entries a scope ledger counts (signed by the scope's keys). */
export function recordedReleases(counted: LedgerEntry[]): Map<string, RecordedTarget> {
  const out = new Map<string, RecordedTarget>();
  for (const e of counted) {
    if (e.op !== DEPLOY_RECORD_OP || !Array.isArray(e.details.targets)) continue;
    for (const t of e.details.targets as Partial<RecordedTarget>[]) {
      if (t && typeof t.service === 'string' && typeof t.target === 'string' && typeof t.release === 'string') {
        out.set(keyOf(t.service, t.target), {
          service: t.service,
          target: t.target,
          release: t.release,
          ...(typeof t.trust === 'string' ? { trust: t.trust } : {}),
        });
      }
    }
  }
  return out;
}

/** The recorded release of `service`'s `target`, if any. */
export function recordedRelease(
  recorded: Map<string, RecordedTarget>,
  service: string,
  target: string,
): RecordedTarget | undefined {
  return recorded.get(keyOf(service, target));
}
