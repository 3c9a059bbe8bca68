import { describe, expect, it } from 'vitest';
import {
  dnsWithin,
  isDnsName,
  namesOutside,
  permittedNamesFor,
  serviceDnsName,
  serviceSpiffeId,
  uriHostWithin,
} from '../src/model/names.js';

describe('identity of a service', () => {
  it('a service in a region gets its SPIFFE ID and DNS name under the region trust domain', () => {
    expect(serviceSpiffeId('us-east-1', 'api', 'mesh.example')).toBe('spiffe://us-east-1.mesh.example/api');
    expect(serviceDnsName('us-east-1', 'api', 'mesh.example')).toBe('api.us-east-1.mesh.example');
  });
});

describe('name constraints (RFC 5280 matching)', () => {
  const permitted = permittedNamesFor('us-east-1', 'mesh.example');
  it.each([
    ['the scope domain itself is inside', 'us-east-1.mesh.example', true],
    ['a name beneath the scope domain is inside', 'api.us-east-1.mesh.example', true],
    ['another region is outside', 'api.eu-west-1.mesh.example', false],
    ['a suffix that is not a label boundary is outside', 'api.evilus-east-1.mesh.example', false],
    ['the mesh domain above the scope is outside', 'mesh.example', false],
  ])('%s', (_, name, inside) => {
    expect(dnsWithin(name, permitted.dns[0]!)).toBe(inside);
  });
  it.each([
    ['a SPIFFE ID of the scope is inside', 'spiffe://us-east-1.mesh.example/api', true],
    ['a SPIFFE ID of another region is outside', 'spiffe://eu-west-1.mesh.example/api', false],
    ['a subdomain host is outside a bare-host URI constraint', 'spiffe://x.us-east-1.mesh.example/api', false],
    ['garbage is outside', 'not a uri', false],
  ])('%s', (_, uri, inside) => {
    expect(uriHostWithin(uri, permitted.uriHosts[0]!)).toBe(inside);
  });
  it('namesOutside lists exactly the offending SANs', () => {
    expect(
      namesOutside(
        { dns: ['a.us-east-1.mesh.example', 'b.eu-west-1.mesh.example'], uris: ['spiffe://global.mesh.example/x'] },
        permitted,
      ),
    ).toEqual(['DNS:b.eu-west-1.mesh.example', 'URI:spiffe://global.mesh.example/x']);
  });
  it.each([
    ['a.b', true],
    ['*.a.b', true],
    ['A.b', false],
    ['a', false],
    ['a..b', false],
    ['-a.b', false],
    ['a.*.b', false],
  ])('isDnsName(%s) is %s', (n, ok) => expect(isDnsName(n)).toBe(ok));
});
