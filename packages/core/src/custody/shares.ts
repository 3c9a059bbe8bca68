/**
 * Split custody of the offline identity: Shamir shares (K of N) of the age
 * identity, in a line-oriented, checksummed text form for paper or separate
 * media. The field arithmetic is the audited `shamir-secret-sharing` package's;
 * this module only frames, checks and recombines, in memory.
 */
import { createHash } from 'node:crypto';
// shamir-secret-sharing loads when shares are split or combined: no other command pays for it at start-up.
const shamir = () => import('shamir-secret-sharing');
import { recipientOf } from './custody.js';
import { TrellisError } from '../model/errors.js';

export const SHARE_MAGIC = 'trellis-share: v1';

export interface IdentityShare {
  index: number;
  k: number;
  n: number;
  mesh: string;
  /** A fingerprint of the identity's recipient, so a share of another mesh is refused before combining. */
  recipient: string;
  data: Uint8Array;
}

/** A short fingerprint of a recipient: the first 16 hex digits of its SHA-256. */
export const recipientFingerprint = (recipient: string): string =>
  createHash('sha256').update(recipient).digest('hex').slice(0, 16);

const checksum = (lines: string[]): string => createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);

/** `K-of-N` from a flag: 2 ≤ K ≤ N ≤ 255. */
export function parseSharesSpec(spec: string): { k: number; n: number } {
  const m = /^(\d+)-of-(\d+)$/.exec(spec);
  const k = m ? Number(m[1]) : NaN;
  const n = m ? Number(m[2]) : NaN;
  if (!m || k < 2 || n < k || n > 255) {
    throw new TrellisError('usage', `--shares ${JSON.stringify(spec)} is not K-of-N with 2 ≤ K ≤ N ≤ 255`, {
      field: '--shares',
      hint: 'for example --shares 2-of-3',
    });
  }
  return { k, n };
}

/** Splits `identity` into N shares, any K of which recombine it; each share is a text block. */
export async function splitIdentity(identity: string, mesh: string, k: number, n: number): Promise<string[]> {
  const recipient = recipientFingerprint(await recipientOf(identity));
  const { split } = await shamir();
  const parts = await split(new TextEncoder().encode(identity), n, k);
  return parts.map((data, i) => {
    const lines = [
      SHARE_MAGIC,
      `mesh: ${mesh}`,
      `share: ${i + 1}`,
      `of: ${n}`,
      `threshold: ${k}`,
      `recipient: ${recipient}`,
      `data: ${Buffer.from(data).toString('hex')}`,
    ];
    return [
      `# trellis offline root identity, share ${i + 1} of ${n} for mesh ${mesh}: any ${k} shares open the root ` +
        `key, fewer reveal nothing`,
      ...lines,
      `check: ${checksum(lines)}`,
      '',
    ].join('\n');
  });
}

/** Reads one share from its text; `source` names it in every error (a file, never its content). */
export function parseShare(text: string, source: string): IdentityShare {
  const bad = (why: string): never => {
    throw new TrellisError('bad-identity', `${source} is not a trellis identity share: ${why}`, {
      file: source,
      hint:
        'use the share exactly as trellis-root init --shares printed it; a damaged share is unusable, use ' +
        "another custodian's",
    });
  };
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines[0] !== SHARE_MAGIC) bad(`it does not start with "${SHARE_MAGIC}"`);
  if (lines.filter((l) => l === SHARE_MAGIC).length > 1)
    bad("it holds more than one share (each custodian's share goes in its own file)");
  const fields = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const m = /^([a-z]+): (\S+)$/.exec(l);
    if (!m) bad('a line is damaged');
    fields.set(m![1]!, m![2]!);
  }
  const body = lines.filter((l) => !l.startsWith('check: '));
  if (fields.get('check') !== checksum(body))
    bad('its checksum does not match (a character is wrong, missing or extra)');
  const num = (f: string) => {
    const v = Number(fields.get(f));
    if (!Number.isInteger(v) || v < 1 || v > 255) bad(`field ${f} is missing or out of range`);
    return v;
  };
  const data = fields.get('data') ?? '';
  if (!/^([0-9a-f]{2})+$/.test(data)) bad('field data is not hex');
  return {
    index: num('share'),
    n: num('of'),
    k: num('threshold'),
    mesh: fields.get('mesh') ?? bad('field mesh is missing'),
    recipient: fields.get('recipient') ?? bad('field recipient is missing'),
    data: Uint8Array.from(Buffer.from(data, 'hex')),
  };
}

/**
 * Recombines the identity from shares, in memory: refuses shares of another
 * identity (not one of `offlineRecipients`, when known), shares of different
 * splits, and fewer than K distinct shares, before any key is opened.
 */
export async function combineShares(
  shares: { share: IdentityShare; source: string }[],
  offlineRecipients?: string[],
): Promise<string> {
  const first = shares[0];
  if (!first)
    throw new TrellisError('custody-missing-identity', 'no identity share was given', {
      hint: 'give K shares: TRELLIS_ROOT_IDENTITY_SHARES=FILE,FILE,… or --shares-from FILE…',
    });
  const known = offlineRecipients?.map(recipientFingerprint);
  for (const { share, source } of shares) {
    if (known && !known.includes(share.recipient)) {
      throw new TrellisError(
        'custody-wrong-identity',
        `${source} is a share of another identity (recipient ${share.recipient}, mesh ${share.mesh}), not of ` +
          `this store's offline identity`,
        { file: source, hint: "use the shares of this mesh's offline identity (trellis.yaml recipients.offline)" },
      );
    }
    if (share.recipient !== first.share.recipient || share.k !== first.share.k || share.n !== first.share.n) {
      throw new TrellisError('custody-wrong-identity', `${source} belongs to another split than ${first.source}`, {
        file: source,
        hint: 'all shares must come from the same trellis-root init --shares',
      });
    }
  }
  const distinct = new Map(shares.map((s) => [s.share.index, s]));
  const { k, n } = first.share;
  if (distinct.size < k) {
    throw new TrellisError(
      'custody-missing-identity',
      `${distinct.size} distinct share(s) of ${n} given (${[...distinct.keys()].sort().join(', ')}); the ` +
        `offline identity needs ${k}`,
      { hint: `bring ${k - distinct.size} more custodian(s) with their share; nothing was opened` },
    );
  }
  const { combine } = await shamir();
  let identity: string;
  try {
    identity = new TextDecoder('utf-8', { fatal: true }).decode(
      await combine([...distinct.values()].map((s) => s.share.data)),
    );
    if (recipientFingerprint(await recipientOf(identity)) !== first.share.recipient) throw new Error('mismatch');
  } catch {
    // Checksums passed, so a share was forged or re-checksummed: say which were used, never what they hold.
    throw new TrellisError(
      'custody-wrong-identity',
      `shares ${[...distinct.values()].map((s) => s.source).join(', ')} do not recombine into the identity they name`,
      { hint: 'one of them was altered: try another combination of K shares' },
    );
  }
  return identity;
}
