import { describe, expect, it } from 'vitest';
import { decodeNameConstraints, encodeNameConstraints } from '../src/name-constraints.js';
import { permittedNamesFor } from '../src/names.js';

// Produced by OpenSSL 3.0 from nameConstraints=critical,permitted;DNS:us-east-1.mesh.example,permitted;URI:us-east-1.mesh.example
const GOLDEN = '3036a0343018821675732d656173742d312e6d6573682e6578616d706c653018861675732d656173742d312e6d6573682e6578616d706c65';

describe('NameConstraints extension', () => {
  it('encodes a scope constraint byte for byte as OpenSSL does', () => {
    expect(Buffer.from(encodeNameConstraints(permittedNamesFor('us-east-1', 'mesh.example'))).toString('hex')).toBe(GOLDEN);
  });
  it('decodes what it encodes', () => {
    expect(decodeNameConstraints(Buffer.from(GOLDEN, 'hex'))).toEqual({
      dns: ['us-east-1.mesh.example'], uriHosts: ['us-east-1.mesh.example'], otherPermitted: 0, excluded: 0,
    });
  });
});
