/** Real mTLS handshakes in Node (OpenSSL underneath) between minted leaves, each side trusting its scope's bundle. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { handshake, handshakeMatrix, type Party } from '../scripts/lib/mtls.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { forgeLeaf } from './helpers/forge.js';
import { party } from './helpers/parties.js';

const SPEC = { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] };
let m: FakeMesh;
let stranger: FakeMesh;
let expiredOut: string;

beforeAll(async () => {
  const longAgo = new Date(Date.now() - 30 * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
  m = await FakeMesh.create({ scopes: SPEC, now: longAgo, leaves: false });
  // Leaves minted 30 days ago (7-day life) are expired now; keep them aside, then renew at the real time.
  expiredOut = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-expired-'));
  expect((await m.ci(['renew', '--now', longAgo, '--out', expiredOut])).code).toBe(0);
  expect((await m.ci(['renew'])).stdout).toContain('(expired)');
  stranger = await FakeMesh.fresh({ scopes: SPEC });
});

describe('the regional boundary in the handshake itself', () => {
  it('matches the rule in every cell: same region ✓, region↔global ✓, region A↔B ✗', async () => {
    const services = [party(m, 'us-east-1', 'api'), party(m, 'eu-west-1', 'api'), party(m, 'global', 'control')];
    const scopeOf = (p: Party) => p.name.split('/')[0]!;
    const cells = await handshakeMatrix(
      services,
      services,
      (c, s) => scopeOf(c) === scopeOf(s) || scopeOf(c) === 'global' || scopeOf(s) === 'global',
    );
    expect(cells).toHaveLength(9);
    for (const cell of cells)
      expect(cell.outcome.ok, `${cell.client} → ${cell.server}: ${cell.outcome.error}`).toBe(cell.expected);
  });
  it("a server refuses another region's client by itself, even when the client trusts the server", async () => {
    const server = party(m, 'us-east-1', 'web');
    const r = await handshake({ ...party(m, 'eu-west-1', 'api'), trust: server.trust }, server);
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/server: UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  });
  it('two services of one region handshake both ways', async () => {
    const api = party(m, 'us-east-1', 'api');
    const web = party(m, 'us-east-1', 'web');
    expect((await handshake(api, web)).ok).toBe(true);
    expect((await handshake(web, api)).ok).toBe(true);
  });
  it('a leaf of another mesh with the very same names is refused (unknown CA)', async () => {
    // The stranger trusts our bundle, so the refusal is our server's judgement of its certificate.
    const r = await handshake(
      { ...party(stranger, 'us-east-1', 'api', 'stranger'), trust: party(m, 'us-east-1', 'api').trust },
      party(m, 'us-east-1', 'web'),
    );
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/server: UNABLE_TO_GET_ISSUER_CERT_LOCALLY/);
  });
  it('an expired leaf is refused as client and as server', async () => {
    const old = party(m, 'us-east-1', 'api', 'expired', expiredOut);
    const asClient = await handshake(old, party(m, 'us-east-1', 'web'));
    expect(asClient.ok).toBe(false);
    expect(asClient.error).toMatch(/server: CERT_HAS_EXPIRED/);
    const asServer = await handshake(party(m, 'us-east-1', 'web'), old);
    expect(asServer.ok).toBe(false);
    expect(asServer.error).toMatch(/client: certificate has expired/);
  });
  it('a leaf forged with a stolen regional key for another region is refused by a global server', async () => {
    const forged = await forgeLeaf(m, 'us-east-1', {
      dns: ['api.eu-west-1.mesh.example'],
      uris: ['spiffe://eu-west-1.mesh.example/api'],
    });
    const thief: Party = {
      name: 'forged',
      dns: 'api.eu-west-1.mesh.example',
      key: forged.key,
      chain: forged.chain,
      trust: party(m, 'us-east-1', 'api').trust,
    };
    const r = await handshake(thief, party(m, 'global', 'control'));
    expect(r.ok).toBe(false);
    // Node 20 has no name for OpenSSL's error 47 and reports UNSPECIFIED; peers.test.ts asserts OpenSSL's own verdict
    // (47) on such a leaf.
    expect(r.error).toMatch(/server: (PERMITTED_SUBTREE_VIOLATION|UNSPECIFIED)/);
    const inside = await forgeLeaf(m, 'us-east-1', {
      dns: ['x.us-east-1.mesh.example'],
      uris: ['spiffe://us-east-1.mesh.example/x'],
    });
    expect(
      (await handshake({ ...thief, key: inside.key, chain: inside.chain }, party(m, 'global', 'control'))).ok,
    ).toBe(true);
  });
});
