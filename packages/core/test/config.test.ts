import { describe, expect, it } from 'vitest';
import { parseMeshConfig, parseScope, serializeMeshConfig } from '../src/config/config.js';
import { failure } from './helpers.js';

const recipients = {
  offline: ['age1az7cqtu0lwyk3dvjkd0mgsglamrhfkdxwkeelueh6vj7q256gvns7ep7qy'],
  ci: 'age1nalk8eaxw4t85ahqjlhgy46kkclt3yv6mt3zdre423jhnhqcufus48435d',
};
const good = serializeMeshConfig({ mesh: 'prod', trustDomain: 'mesh.example', recipients });

describe('trellis.yaml', () => {
  it('round-trips what init writes, with the contract defaults', () => {
    const c = parseMeshConfig(good);
    expect(c.ttl.leaf).toBe(7 * 86_400_000);
    expect(c.ttl.intermediate).toBe(3 * 365 * 86_400_000);
    expect(c.overlap.propagation).toBe(86_400_000);
    expect(c.algorithms.root).toBe('ecdsa-p256');
    expect(serializeMeshConfig(c)).toBe(good);
  });
  it.each([
    ['an unknown top-level key', good.replace('mesh: prod', 'mesh: prod\nmehs: typo'), 'mehs'],
    ['an unknown default', good.replace('    leaf: 7d', '    leaf: 7d\n    laef: 1d'), 'defaults.ttl.laef'],
    ['a bad duration', good.replace('leaf: 7d', 'leaf: seven'), 'defaults.ttl.leaf'],
    ['an unknown algorithm', good.replace('root: ecdsa-p256', 'root: rsa-1024'), 'defaults.algorithms.root'],
    ['a bad trust domain', good.replace('trustDomain: mesh.example', 'trustDomain: Mesh_Example'), 'trustDomain'],
    ['a recipient that is not age', good.replace(/ci: age1\w+/, 'ci: ssh-ed25519 AAAA'), 'recipients.ci'],
    ['an unsupported version', good.replace('version: 1', 'version: 2'), 'version'],
  ])('refuses %s, naming the field', (_, text, field) => {
    const e = failure(() => parseMeshConfig(text));
    expect(e.reason).toBe('bad-config');
    expect(e.exitCode).toBe(2);
    expect(e.place).toEqual({ file: 'trellis.yaml', field });
  });
  it('refuses YAML that does not parse, naming the file', () => {
    const e = failure(() => parseMeshConfig('mesh: [unclosed'));
    expect(e.place.file).toBe('trellis.yaml');
    expect(e.message).toMatch(/not valid YAML/);
  });
  it('refuses duplicate keys rather than keeping one silently', () => {
    expect(failure(() => parseMeshConfig(`${good}mesh: other\n`)).reason).toBe('bad-config');
  });
});

describe('scopes/<scope>.yaml', () => {
  const td = 'mesh.example';
  it('reads the smallest form and the optional fields', () => {
    const s = parseScope(
      'kind: region\nservices:\n  api: {}\n  web:\n    dns: [edge.us-east-1.mesh.example]\n    ttl: 72h\n',
      'us-east-1',
      td,
    );
    expect(s).toEqual({
      name: 'us-east-1',
      kind: 'region',
      services: [
        { name: 'api', dns: [], deploy: [] },
        { name: 'web', dns: ['edge.us-east-1.mesh.example'], deploy: [], ttl: 72 * 3_600_000 },
      ],
    });
  });
  it.each([
    [
      'an unknown service key',
      'kind: region\nservices:\n  api:\n    dsn: [x.us-east-1.mesh.example]\n',
      'us-east-1',
      'services.api.dsn',
    ],
    [
      'an extra DNS name outside the scope',
      'kind: region\nservices:\n  api:\n    dns: [api.eu-west-1.mesh.example]\n',
      'us-east-1',
      'services.api.dns[0]',
    ],
    ['a service name that is not a DNS label', 'kind: region\nservices:\n  Api_1: {}\n', 'us-east-1', 'services.Api_1'],
    ['a region named global', 'kind: region\nservices: {}\n', 'global', 'kind'],
    ['a second global scope', 'kind: global\nservices: {}\n', 'us-east-1', 'kind'],
    ['a missing kind', 'services: {}\n', 'us-east-1', 'kind'],
    [
      'an unknown deploy type',
      'kind: region\nservices:\n  api:\n    deploy: [{type: ftp}]\n',
      'us-east-1',
      'services.api.deploy[0].type',
    ],
    ['a bad ttl', 'kind: region\nservices:\n  api:\n    ttl: 7days\n', 'us-east-1', 'services.api.ttl'],
  ])('refuses %s, naming the field', (_, text, scope, field) => {
    const e = failure(() => parseScope(text, scope, td));
    expect(e.reason).toBe('bad-scope');
    expect(e.exitCode).toBe(2);
    expect(e.place).toEqual({ file: `scopes/${scope}.yaml`, field });
  });
  it('refuses a file name that is not a scope name', () => {
    expect(failure(() => parseScope('kind: region\n', 'US_East', td)).reason).toBe('bad-scope');
  });
});
