/**
 * What a renew ledger entry records about its mints: a count per reason and
 * the hash binding of leaves.yaml (record-proofs.ts issuanceBinding). It used
 * to list every service's reason and every leaf in `created`, about 250
 * bytes a leaf: 2.5 MB a full renew of 10,000 services. Now it is a few
 * hundred bytes however many leaves it mints; leaves.yaml, which the hash
 * proves, holds each leaf's serial, fingerprint, notBefore and notAfter.
 */
import type { DueReason } from './issuance.js';

export function renewRecord(
  mints: { reason: DueReason }[],
  leaves: { sha256: string; count: number } | undefined,
): Record<string, unknown> {
  if (!mints.length) return {};
  const minted: Record<string, number> = {};
  for (const m of mints) minted[m.reason] = (minted[m.reason] ?? 0) + 1;
  return { minted, ...(leaves ? { leaves } : {}) };
}
