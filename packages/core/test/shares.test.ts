import { describe, expect, it } from 'vitest';
import { newIdentity } from '../src/custody/custody.js';
import { isTrellisError } from '../src/model/errors.js';
import {
  combineShares,
  parseShare,
  parseSharesSpec,
  recipientFingerprint,
  splitIdentity,
} from '../src/custody/shares.js';

const reason = async (p: Promise<unknown> | (() => unknown)) => {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return isTrellisError(e) ? e.reason : String(e);
  }
  return 'no error';
};

describe('identity shares (in process)', () => {
  it('every K-subset of a 3-of-5 split recombines the identity, classic and post-quantum; K−1 are refused', async () => {
    for (const pq of [false, true]) {
      const id = await newIdentity(pq);
      const shares = (await splitIdentity(id.identity, 'prod', 3, 5)).map((t, i) => ({
        share: parseShare(t, `s${i + 1}`),
        source: `s${i + 1}`,
      }));
      expect(shares.map((s) => s.share.recipient)).toEqual(Array(5).fill(recipientFingerprint(id.recipient)));
      for (let a = 0; a < 5; a++)
        for (let b = a + 1; b < 5; b++)
          for (let c = b + 1; c < 5; c++) {
            expect(await combineShares([shares[a]!, shares[b]!, shares[c]!], [id.recipient])).toBe(id.identity);
          }
      expect(await reason(combineShares([shares[0]!, shares[4]!], [id.recipient]))).toBe('custody-missing-identity');
      expect(await reason(combineShares([shares[0]!, shares[0]!, shares[4]!], [id.recipient]))).toBe(
        'custody-missing-identity',
      );
      expect(await reason(combineShares(shares.slice(0, 3), [(await newIdentity()).recipient]))).toBe(
        'custody-wrong-identity',
      );
    }
  });

  it('parseSharesSpec takes 2 ≤ K ≤ N ≤ 255 only', () => {
    expect(parseSharesSpec('2-of-3')).toEqual({ k: 2, n: 3 });
    for (const bad of ['1-of-3', '4-of-3', '2-of-256', '2of3', ''])
      expect(() => parseSharesSpec(bad)).toThrow(/K-of-N/);
  });
});
