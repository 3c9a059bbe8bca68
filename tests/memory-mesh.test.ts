/**
 * The in-memory fixture (tests/helpers/memory-mesh.ts) against the store the real CLIs make: the same mesh loaded,
 * verify clean, and the procedures in-process writing what the CLIs would (a renew, a rotation through its gates, a
 * refusal leaving the map byte-identical).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadMesh, Store } from '@trellis/core/store';
import { MemoryMesh } from './helpers/memory-mesh.js';
import { at, DAY, HOUR, plus, RUN_HOUR } from './helpers/clock.js';

const T0 = RUN_HOUR;
const SPEC = { scopes: { global: ['control'], 'us-east-1': ['api', 'web'] }, now: at(T0) };
let m: MemoryMesh;

beforeAll(async () => {
  m = await MemoryMesh.create(SPEC);
}, 120_000);

const errors = async (x: MemoryMesh, now: Date) => (await x.verify(now)).filter((f) => f.level === 'error');

describe('MemoryMesh', () => {
  it('loads the mesh the real CLIs made, byte for byte, and verify finds no error', async () => {
    const real = await MemoryMesh.create(SPEC); // the same spec again: the run's one template
    expect(real.snapshot()).toEqual(m.snapshot());
    expect({ ...m.mesh(), dir: '' }).toEqual({ ...loadMesh(new Store(m.source.dir)), dir: '' });
    expect(m.mesh().scopes.map((s) => s.name)).toEqual(['global', 'us-east-1']);
    expect(await errors(m, T0)).toEqual([]);
    expect(m.firstOut.has('us-east-1/api/cert.pem')).toBe(true);
  }, 120_000);

  it('a clone is independent; a listing sees files and directories as the disk store does', () => {
    const c = m.clone();
    c.write('scopes/eu-west-1.yaml', 'kind: region\nservices:\n  api: {}\n');
    expect(c.store.list('scopes')).toEqual(['eu-west-1.yaml', 'global.yaml', 'us-east-1.yaml']);
    expect(m.store.list('scopes')).toEqual(['global.yaml', 'us-east-1.yaml']);
    expect(c.store.list('bundles', 'dir')).toEqual(['global', 'root', 'us-east-1']);
  });

  it('renew in-process: nothing due at once, every leaf due after 2/3 of its life; verify clean after', async () => {
    const c = m.clone();
    expect((await c.renew(plus(T0, HOUR))).minted).toBe(0);
    const later = plus(T0, 20 * DAY);
    expect((await c.renew(later)).minted).toBe(3);
    expect(c.snapshot()).not.toEqual(m.snapshot());
    expect(await errors(c, later)).toEqual([]);
  });

  it('a pending scope, its ceremony and first renew; a rotation through its gates; verify clean at each step', async () => {
    const c = m.clone();
    c.write('scopes/eu-west-1.yaml', 'kind: region\nservices:\n  api: {}\n');
    await c.intermediates(['eu-west-1'], plus(T0, HOUR));
    await c.renew(plus(T0, HOUR));
    expect(await errors(c, plus(T0, HOUR))).toEqual([]);
    await c.rotate('us-east-1', HOUR, plus(T0, 2 * HOUR));
    for (const h of [4, 6, 8]) {
      await c.renew(plus(T0, h * HOUR));
      expect(await errors(c, plus(T0, h * HOUR)), `+${h}h`).toEqual([]);
    }
    expect(c.mesh().material.get('us-east-1')!.state!.phase).not.toBe('publish');
  });

  it('a refused step leaves the map byte-identical and gives the reason', async () => {
    const c = m.clone();
    const e = await c.refused(() => c.abort('us-east-1', plus(T0, HOUR)));
    expect(e.reason).toMatch(/./);
    expect(c.snapshot()).toEqual(m.snapshot());
  });
});
