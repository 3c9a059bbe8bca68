import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Store, findStore } from '../src/store/store.js';
import { TrellisError } from '../src/model/errors.js';

function scratch(): Store {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-store-'));
  fs.writeFileSync(path.join(dir, 'trellis.yaml'), 'version: 1\n');
  return new Store(dir);
}

describe('store writes', () => {
  it('applies a multi-file write and leaves no journal behind', () => {
    const s = scratch();
    s.commit([
      { path: 'a/one', content: '1\n' },
      { path: 'b/two', content: '2\n', mode: 0o600 },
    ]);
    expect(s.read('a/one')).toBe('1\n');
    expect(fs.statSync(s.abs('b/two')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(s.abs('.trellis/journal'))).toBe(false);
  });
  it('refuses (exit 4) to overwrite a file that changed since it was read', () => {
    const s = scratch();
    s.commit([{ path: 'f', content: 'old\n' }]);
    const reader = new Store(s.dir);
    reader.read('f');
    fs.writeFileSync(s.abs('f'), 'someone else\n');
    let err: unknown;
    try {
      reader.commit([{ path: 'f', content: 'mine\n' }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TrellisError);
    expect((err as TrellisError).exitCode).toBe(4);
    expect(s.read('f')).toBe('someone else\n');
  });
  it('replays a committed journal and discards an uncommitted one', () => {
    const s = scratch();
    const journal = s.abs('.trellis/journal');
    fs.mkdirSync(journal, { recursive: true });
    fs.writeFileSync(path.join(journal, '0.data'), 'new\n');
    fs.writeFileSync(
      path.join(journal, 'manifest.json'),
      JSON.stringify({ writes: [{ path: 'x', data: '0.data', mode: 0o644 }] }),
    );
    fs.mkdirSync(s.abs('.trellis/journal.tmp'));
    fs.writeFileSync(s.abs('.trellis/journal.tmp/manifest.json'), '{"writes":[{"path":"y","data":null,"mode":420}]}');
    expect(s.replayJournal()).toBe(true);
    expect(s.read('x')).toBe('new\n');
    expect(fs.existsSync(s.abs('.trellis/journal.tmp'))).toBe(false);
    expect(s.replayJournal()).toBe(false);
  });
  it('a second run cannot take the lock while the first holds it (exit 4)', async () => {
    const s = scratch();
    const other = new Store(s.dir);
    await s.withLock(async () => {
      await expect(other.withLock(async () => 'never')).rejects.toMatchObject({ reason: 'store-locked' });
    });
    await expect(other.withLock(async () => 'free again')).resolves.toBe('free again');
  });
  it('takes over a lock left by a process that died', async () => {
    const s = scratch();
    fs.mkdirSync(s.abs('.trellis'), { recursive: true });
    fs.writeFileSync(
      s.abs('.trellis/lock'),
      JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), since: 'then' }),
    );
    await expect(s.withLock(async () => 'ok')).resolves.toBe('ok');
  });
});

describe('stale locks', () => {
  it.each([
    ['empty (a run that died on a full disk, before locks were linked whole)', ''],
    ['cut short', '{"pid": 4'],
  ])('an unreadable lock, %s, is taken over at once', async (_name, text) => {
    const s = scratch();
    fs.mkdirSync(s.abs('.trellis'), { recursive: true });
    fs.writeFileSync(s.abs('.trellis/lock'), text);
    await expect(s.withLock(async () => 'taken over')).resolves.toBe('taken over');
    expect(fs.readdirSync(s.abs('.trellis'))).toEqual([]);
  });
  it('the lock a run holds is complete from the moment it exists', async () => {
    const s = scratch();
    await s.withLock(async () => {
      expect(JSON.parse(fs.readFileSync(s.abs('.trellis/lock'), 'utf8'))).toMatchObject({
        pid: process.pid,
        host: os.hostname(),
      });
      expect(fs.readdirSync(s.abs('.trellis'))).toEqual(['lock']);
    });
  });
});

describe('journal replay', () => {
  it('completes a replay that was interrupted after moving some files into place', () => {
    const s = scratch();
    const journal = s.abs('.trellis/journal');
    fs.mkdirSync(journal, { recursive: true });
    // Entry 0 was already renamed into place by the interrupted replay; entry 1 was not; entry 2 removes a file.
    fs.writeFileSync(s.abs('x'), 'new x\n');
    fs.writeFileSync(path.join(journal, '1.data'), 'new y\n');
    fs.writeFileSync(s.abs('z'), 'doomed\n');
    fs.writeFileSync(
      path.join(journal, 'manifest.json'),
      JSON.stringify({
        writes: [
          { path: 'x', data: '0.data', mode: 0o644 },
          { path: 'sub/y', data: '1.data', mode: 0o600 },
          { path: 'z', data: null, mode: 0o644 },
        ],
      }),
    );
    expect(s.replayJournal()).toBe(true);
    expect([s.read('x'), s.read('sub/y'), s.exists('z')]).toEqual(['new x\n', 'new y\n', false]);
    expect(fs.statSync(s.abs('sub/y')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(journal)).toBe(false);
  });
});

describe('finding a store', () => {
  it('an init that died after its commit point is a store: the lock completes it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-store-'));
    const journal = path.join(dir, '.trellis/journal');
    fs.mkdirSync(journal, { recursive: true });
    fs.writeFileSync(path.join(journal, '0.data'), 'version: 1\n');
    fs.writeFileSync(
      path.join(journal, 'manifest.json'),
      JSON.stringify({ writes: [{ path: 'trellis.yaml', data: '0.data', mode: 0o644 }] }),
    );
    expect(findStore('/', dir)).toBe(dir);
    expect(findStore(path.join(dir, '.trellis'))).toBe(dir);
    await new Store(dir).withLock(async () => undefined);
    expect(fs.readFileSync(path.join(dir, 'trellis.yaml'), 'utf8')).toBe('version: 1\n');
  });
  it('an uncommitted staging directory is not a store', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-store-'));
    fs.mkdirSync(path.join(dir, '.trellis/journal.tmp-x'), { recursive: true });
    expect(() => findStore('/', dir)).toThrow(/holds no trellis.yaml/);
  });
});
