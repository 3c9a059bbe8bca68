/** Each tier's profile, minted by the real code and checked by the one function verify uses. */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  TrellisError,
  mintLeaf,
  nodeCryptoSeam,
  parseScope,
  permittedNamesFor,
  profileViolations,
  validityWithin,
  type Certificate,
  type SigningIntermediate,
  caKeyFromPem,
} from '@trellis/core';
import { mintIntermediate, mintRoot } from '../packages/offline/src/ceremony.js';
import { parseMeshConfig, serializeMeshConfig } from '../packages/core/src/config/config.js';
import { newIdentity } from '../packages/core/src/custody/custody.js';
import { RUN_NOW } from './helpers/clock.js';

const NOW = RUN_NOW;
let config: ReturnType<typeof parseMeshConfig>;
let root: Certificate;
let inter: SigningIntermediate;

beforeAll(async () => {
  config = parseMeshConfig(
    serializeMeshConfig({
      mesh: 'p',
      trustDomain: 'mesh.example',
      recipients: { offline: [(await newIdentity()).recipient], ci: (await newIdentity()).recipient },
    }),
  );
  const r = await mintRoot(config, NOW, nodeCryptoSeam);
  root = r.cert;
  const signer = await caKeyFromPem('root', r.cert, r.keyPem);
  const i = await mintIntermediate('us-east-1', config, signer, NOW, nodeCryptoSeam);
  inter = { scope: 'us-east-1', ...(await caKeyFromPem('intermediate', i.cert, i.keyPem)) };
});

function reason(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof TrellisError) return e.reason;
    throw e;
  }
  return undefined;
}

describe('profiles', () => {
  it('the root, intermediate and leaf each conform to their tier and to no other', async () => {
    const leaf = await mintLeaf(
      {
        scope: 'us-east-1',
        service: { name: 'api', dns: [], deploy: [] },
        trustDomain: 'mesh.example',
        ttl: 7 * 86_400_000,
        algorithm: 'ecdsa-p256',
        now: NOW,
      },
      inter,
      nodeCryptoSeam,
    );
    const permitted = permittedNamesFor('us-east-1', 'mesh.example');
    expect(profileViolations(root, 'root')).toEqual([]);
    expect(profileViolations(inter.cert, 'intermediate', { permitted })).toEqual([]);
    expect(profileViolations(leaf.cert, 'leaf', { permitted })).toEqual([]);
    expect(profileViolations(leaf.cert, 'intermediate')).toContain('basicConstraints CA=false, want true');
    expect(profileViolations(inter.cert, 'root')).toEqual(
      expect.arrayContaining(['pathLen 0, want none', 'unexpected nameConstraints']),
    );
    expect(
      profileViolations(inter.cert, 'intermediate', {
        permitted: permittedNamesFor('eu-west-1', 'mesh.example'),
      }).join(),
    ).toMatch(/nameConstraints permit DNS \[us-east-1.mesh.example\]/);
  });
  it('the intermediate name constraints are critical and the leaf SAN is not', () => {
    expect(inter.cert.extensions.find((e) => e.type === '2.5.29.30')?.critical).toBe(true);
    expect(inter.cert.extensions.find((e) => e.type === '2.5.29.19')?.critical).toBe(true);
  });
  it('serials are positive, minimal and carry 128 random bits', async () => {
    expect(inter.cert.serialNumber).toMatch(/^01[0-9a-f]{32}$/);
  });
  it.each([
    [
      'a leaf that would outlive its intermediate',
      () =>
        validityWithin('leaf', new Date(inter.cert.notAfter.getTime() - 86_400_000), 7 * 86_400_000, {
          notAfter: inter.cert.notAfter,
          label: 'i',
        }),
      'outlives-issuer',
    ],
    [
      'a leaf under an expired intermediate',
      () =>
        validityWithin('leaf', new Date(inter.cert.notAfter.getTime() + 1000), 86_400_000, {
          notAfter: inter.cert.notAfter,
          label: 'i',
        }),
      'issuer-expiring',
    ],
    [
      'nothing for a leaf well inside its issuer',
      () => validityWithin('leaf', NOW, 7 * 86_400_000, { notAfter: inter.cert.notAfter, label: 'i' }),
      undefined,
    ],
  ])('refuses %s', (_, fn, want) => expect(reason(fn)).toBe(want));
  it("refuses to mint a leaf whose SANs fall outside the issuer's scope", async () => {
    const wrongIssuer = { ...inter, scope: 'us-east-1' };
    await expect(
      mintLeaf(
        {
          scope: 'eu-west-1',
          service: { name: 'api', dns: [], deploy: [] },
          trustDomain: 'mesh.example',
          ttl: 86_400_000,
          algorithm: 'ecdsa-p256',
          now: NOW,
        },
        wrongIssuer,
        nodeCryptoSeam,
      ),
    ).rejects.toMatchObject({ reason: 'name-outside-constraints' });
  });
  it('refuses a service whose DNS name would overflow the 64-character common name', () => {
    expect(
      reason(() => parseScope(`kind: region\nservices:\n  ${'a'.repeat(45)}: {}\n`, 'us-east-1', 'mesh.example')),
    ).toBe('bad-scope');
  });
  it.each(['ecdsa-p384', 'ed25519'] as const)('mints a %s root that conforms', async (alg) => {
    const r = await mintRoot({ ...config, algorithms: { ...config.algorithms, root: alg } }, NOW, nodeCryptoSeam);
    expect(profileViolations(r.cert, 'root')).toEqual([]);
    expect(await r.cert.verify({ publicKey: r.cert.publicKey, signatureOnly: true })).toBe(true);
  });
});
