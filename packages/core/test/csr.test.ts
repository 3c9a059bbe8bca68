/**
 * A host's certificate request is input a pull request writes: every one of
 * its bytes is checked, so no changed byte yields a request renew signs for.
 */
import { webcrypto } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KeyAlgorithm } from '../src/crypto/crypto.js';
import { certificateRequestPem, readCertificateRequest } from '../src/x509/csr.js';

const GENERATE: Record<KeyAlgorithm, EcKeyGenParams | Algorithm> = {
  'ecdsa-p256': { name: 'ECDSA', namedCurve: 'P-256' } as EcKeyGenParams,
  'ecdsa-p384': { name: 'ECDSA', namedCurve: 'P-384' } as EcKeyGenParams,
  ed25519: { name: 'Ed25519' },
};

const derOf = (pem: string) => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
const pemOf = (der: Buffer) =>
  `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;

/** A changed request is refused outright, or read as one whose holder proved nothing. */
async function refused(der: Buffer): Promise<boolean> {
  try {
    return !(await readCertificateRequest(pemOf(der))).possessed;
  } catch {
    return true;
  }
}

describe.each(Object.keys(GENERATE) as KeyAlgorithm[])('a %s certificate request', (algorithm) => {
  let der: Buffer;
  it('reads as possessed as written', async () => {
    const keys = (await webcrypto.subtle.generateKey(GENERATE[algorithm], true, ['sign', 'verify'])) as CryptoKeyPair;
    der = derOf(await certificateRequestPem(keys, algorithm, 'web'));
    const request = await readCertificateRequest(pemOf(der));
    expect(request.possessed).toBe(true);
    expect(request.algorithm).toBe(algorithm);
  });

  it('property: any one byte changed is refused (the parsers alone accept a changed length or sign bit)', async () => {
    // Counterexamples CI found: the second length byte (a P-256 request's
    // outer length), and the top bit of an ECDSA signature integer.
    const examples: [number, number][] = [
      [2, 1],
      [3, 32],
      [der.length - 33, 128],
      [der.length - 66, 128],
    ];
    await fc.assert(
      fc.asyncProperty(fc.nat(der.length - 1), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
        const bad = Buffer.from(der);
        bad[at]! ^= xor;
        expect(await refused(bad), `byte ${at} ^ ${xor}`).toBe(true);
      }),
      { numRuns: 2000, examples },
    );
  });
});
