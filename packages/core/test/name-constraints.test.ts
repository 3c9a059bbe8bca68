import { describe, expect, it } from 'vitest';
import { decodeNameConstraints, encodeNameConstraints } from '../src/x509/name-constraints.js';
import { permittedNamesFor } from '../src/model/names.js';

// Produced by OpenSSL 3.0 from
// nameConstraints=critical,permitted;DNS:us-east-1.mesh.example,permitted;URI:us-east-1.mesh.example,
// excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::
const GOLDEN =
  '3068a0343018821675732d656173742d312e6d6573682e6578616d706c653018861675732d656173742d312e6d6573682e6578616d706c65' +
  'a130300a87080000000000000000302287200000000000000000000000000000000000000000000000000000000000000000';
// What intermediates minted before the IP exclusion carry (nameConstraints without excluded subtrees).
const LEGACY =
  '3036a0343018821675732d656173742d312e6d6573682e6578616d706c653018861675732d656173742d312e6d6573682e6578616d706c65';

describe('NameConstraints extension', () => {
  it('encodes a scope constraint, every IP subtree excluded, byte for byte as OpenSSL does', () => {
    expect(Buffer.from(encodeNameConstraints(permittedNamesFor('us-east-1', 'mesh.example'))).toString('hex')).toBe(
      GOLDEN,
    );
  });
  it('decodes what it encodes', () => {
    expect(decodeNameConstraints(Buffer.from(GOLDEN, 'hex'))).toEqual({
      dns: ['us-east-1.mesh.example'],
      uriHosts: ['us-east-1.mesh.example'],
      excludedIps: ['0.0.0.0/0', '::/0'],
      otherPermitted: 0,
      otherExcluded: 0,
    });
  });
  it('decodes a constraint minted before the IP exclusion as excluding nothing', () => {
    expect(decodeNameConstraints(Buffer.from(LEGACY, 'hex')).excludedIps).toEqual([]);
  });
});
