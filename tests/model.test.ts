/**
 * A model-based test over the procedures: random sequences (fast-check) of
 * ceremonies for new regions, rotate / abort / renew across gates, recover,
 * revoke, root rotate / finalize and retiring a region, at random simulated
 * times, run in-process on the procedures themselves. After every step:
 * verify finds no error, a refused step left the store byte-identical, and
 * every tracked leaf verifies in OpenSSL and Go against exactly the bundles
 * that must trust it — never against one that must not.
 *
 * TRELLIS_MODEL_RUNS sets how many sequences (default 10 in the suite);
 * `TRELLIS_MODEL_RUNS=300 pnpm exec vitest run tests/model.test.ts` is the long run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Store, TrellisError, isTrellisError, parseCertificate, keyId, liveIntermediates, loadMesh, nodeCryptoSeam, readIdentities, revocableLeaf, revokeLeaf, sha256Hex, verifyMesh,
  type Certificate, type Mesh,
} from '@trellis/core';
import { openRootKey, openRootKeys } from '../packages/offline/src/ceremony.js';
import {
  abortIntermediateRotation, beginIntermediateRotation, beginRootRotation, ceremonyIntermediates, finalizeRootRotation, recoverScope, retireScope, type Ceremony,
} from '../packages/offline/src/procedures.js';
import { renewStore } from '../packages/ci/src/commands/renew.js';
import { openScopeKeys } from '../packages/ci/src/issue.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO } from './helpers/cli.js';
import { at, DAY, HOUR } from './helpers/drill.js';

const GOBATCH = path.join(REPO, 'scripts/gobatch/gobatch');
const T0 = new Date('2027-03-01T00:00:00Z');
const RUNS = Number(process.env.TRELLIS_MODEL_RUNS ?? 10);

export type Step =
  | { kind: 'renew'; hours: number }
  | { kind: 'add-region' }
  | { kind: 'rotate'; scope: number; propagationHours: number }
  | { kind: 'abort'; scope: number }
  | { kind: 'recover'; scope: number }
  | { kind: 'revoke'; scope: number; service: number }
  | { kind: 'root-rotate' }
  | { kind: 'root-finalize' }
  | { kind: 'delete-scope'; scope: number }
  | { kind: 'retire'; scope: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('renew' as const), hours: fc.integer({ min: 0, max: 96 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'add-region' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('rotate' as const), scope: fc.nat(5), propagationHours: fc.integer({ min: 1, max: 48 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('abort' as const), scope: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('recover' as const), scope: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revoke' as const), scope: fc.nat(5), service: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'root-rotate' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'root-finalize' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete-scope' as const), scope: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('retire' as const), scope: fc.nat(5) }) },
);

/** A leaf minted during the sequence, kept until it expires: hosts may still present it. */
interface Tracked { scope: string; service: string; file: string; cert: Certificate; issuerKey: string; serial: string }

class Model {
  now = T0;
  readonly store: Store;
  readonly leaves: Tracked[] = [];
  readonly revoked = new Set<string>();
  /** Issuer keys recovery or retirement burned: their leaves must verify nowhere. */
  readonly burned = new Set<string>();
  readonly log: string[] = [];
  /** Regions a pull request deleted that the custodian has not retired yet: still trusted by the global scope. */
  readonly pendingRetire = new Set<string>();
  protected regions = 0;

  constructor(readonly dir: string, readonly scratch: string, private readonly rootIds: string[], private readonly ciIds: string[]) {
    this.store = new Store(dir);
  }

  mesh(): Mesh {
    return loadMesh(this.store);
  }

  protected locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.store.withLock(fn);
  }

  private ceremony(mesh: Mesh): Ceremony {
    return { mesh, now: this.now, posture: { allowOnline: true, onlineInterfaces: [] }, actor: 'model', recipients: {}, seam: nodeCryptoSeam };
  }

  protected pick(mesh: Mesh, i: number, regionsOnly = false): string | undefined {
    const names = mesh.scopes.filter((s) => !regionsOnly || s.kind === 'region').map((s) => s.name);
    return names.length ? names[i % names.length] : undefined;
  }

  protected track(scope: string, leaves: { service: string; certPem: string; cert: Certificate; record: { serial: string; issuerKey: string } }[]): void {
    for (const l of leaves) {
      const file = path.join(this.scratch, `${this.leaves.length}-${scope}-${l.service}.pem`);
      fs.writeFileSync(file, l.certPem);
      this.leaves.push({ scope, service: l.service, file, cert: l.cert, issuerKey: l.record.issuerKey, serial: l.record.serial });
    }
  }

  private burn(mesh: Mesh, scope: string): void {
    for (const l of liveIntermediates(mesh, scope)) this.burned.add(keyId(l.cert));
  }

  /** Runs one step under the store lock; a TrellisError is a refusal, and must leave the store as it was. */
  async apply(s: Step): Promise<'done' | 'refused' | 'skipped'> {
    const before = snapshot(this.dir);
    try {
      const r = await this.locked(() => this.run(s));
      this.log.push(`${JSON.stringify(s)} → ${r}`);
      return r;
    } catch (e) {
      if (!isTrellisError(e)) throw e;
      this.log.push(`${JSON.stringify(s)} → refused (${e.reason})`);
      expect(snapshot(this.dir), `a refused ${s.kind} changed the store: ${e.message}`).toEqual(before);
      return 'refused';
    }
  }

  protected async run(s: Step): Promise<'done' | 'skipped'> {
    const mesh = this.mesh();
    const c = this.ceremony(mesh);
    switch (s.kind) {
      case 'renew': {
        this.now = new Date(this.now.getTime() + s.hours * HOUR);
        const r = await renewStore(this.store, { now: this.now, out: path.join(this.scratch, 'out') }, async () => this.ciIds, () => {});
        for (const m of r?.minted ?? []) this.track(m.scope, m.leaves);
        return 'done';
      }
      case 'add-region': {
        if (mesh.scopes.length >= 5) return 'skipped';
        const name = `r${++this.regions}`;
        // The pull request adds the scope file; the custodian's ceremony follows.
        fs.writeFileSync(path.join(this.dir, `scopes/${name}.yaml`), 'kind: region\nservices:\n  api: {}\n');
        try {
          const r = await ceremonyIntermediates(this.ceremony(this.mesh()), [name], await openRootKey(mesh, this.rootIds, this.now));
          this.store.commit(r.writes);
        } catch (e) {
          fs.rmSync(path.join(this.dir, `scopes/${name}.yaml`));
          throw e;
        }
        return 'done';
      }
      case 'rotate': {
        const scope = this.pick(mesh, s.scope)!;
        this.store.commit((await beginIntermediateRotation(c, scope, s.propagationHours * HOUR, await openRootKey(mesh, this.rootIds, this.now))).writes);
        return 'done';
      }
      case 'abort': {
        const scope = this.pick(mesh, s.scope)!;
        this.store.commit(abortIntermediateRotation(c, scope, await openRootKey(mesh, this.rootIds, this.now)).writes);
        return 'done';
      }
      case 'recover': {
        const scope = this.pick(mesh, s.scope)!;
        const r = await recoverScope(c, scope, 'keyCompromise', await openRootKeys(mesh, this.rootIds, this.now));
        this.burn(mesh, scope);
        this.store.commit(r.writes);
        return 'done';
      }
      case 'revoke': {
        const scope = this.pick(mesh, s.scope)!;
        const services = mesh.scopes.find((x) => x.name === scope)!.services.map((x) => x.name);
        const service = services[s.service % services.length]!;
        const serial = revocableLeaf(mesh, scope, service).serial;
        const r = await revokeLeaf(mesh, scope, service, 'keyCompromise', await openScopeKeys(mesh, scope, this.ciIds), this.now, 'model', nodeCryptoSeam);
        this.store.commit(r.writes);
        this.revoked.add(serial);
        this.track(scope, [r.leaf]);
        return 'done';
      }
      case 'root-rotate':
        this.store.commit((await beginRootRotation(c, await openRootKey(mesh, this.rootIds, this.now))).writes);
        return 'done';
      case 'root-finalize':
        this.store.commit((await finalizeRootRotation(c, await openRootKey(mesh, this.rootIds, this.now))).writes);
        return 'done';
      case 'delete-scope': {
        const scope = this.pick(mesh, s.scope, true);
        if (!scope || mesh.scopes.filter((x) => x.kind === 'region').length < 2) return 'skipped';
        // The pull request that deletes a region merges; its retire ceremony comes later.
        fs.rmSync(path.join(this.dir, `scopes/${scope}.yaml`));
        this.pendingRetire.add(scope);
        return 'done';
      }
      case 'retire': {
        const pending = [...this.pendingRetire][0];
        if (pending) {
          const r = await retireScope(c, pending, 'cessationOfOperation', await openRootKeys(mesh, this.rootIds, this.now));
          this.burn(mesh, pending);
          this.store.commit(r.writes);
          this.pendingRetire.delete(pending);
          return 'done';
        }
        const scope = this.pick(mesh, s.scope, true);
        if (!scope || mesh.scopes.filter((x) => x.kind === 'region').length < 2) return 'skipped';
        // The pull request deletes the scope file; the custodian's retire follows.
        const file = path.join(this.dir, `scopes/${scope}.yaml`);
        const text = fs.readFileSync(file, 'utf8');
        fs.rmSync(file);
        try {
          const after = this.mesh();
          const r = await retireScope(this.ceremony(after), scope, 'cessationOfOperation', await openRootKeys(after, this.rootIds, this.now));
          this.burn(after, scope);
          this.store.commit(r.writes);
        } catch (e) {
          fs.writeFileSync(file, text);
          throw e;
        }
        return 'done';
      }
    }
  }

  /** The invariants, after every step. */
  async check(): Promise<void> {
    const mesh = this.mesh();
    const errors = (await verifyMesh(mesh, this.now)).filter((f) => f.level === 'error');
    expect(errors, `verify after: ${this.log.join(' | ')}`).toEqual([]);

    const kind = new Map(mesh.scopes.map((s) => [s.name, s.kind]));
    const live = this.leaves.filter((l) => l.cert.notAfter > this.now);
    this.leaves.splice(0, this.leaves.length, ...live);
    const mustTrust = (bundle: string, l: Tracked) =>
      !this.revoked.has(l.serial) && !this.burned.has(l.issuerKey) && (kind.has(l.scope) || this.pendingRetire.has(l.scope)) && l.cert.notBefore <= this.now
      && (bundle === l.scope || l.scope === 'global' || kind.get(bundle) === 'global');
    // A revoked leaf still chains (no CRL in this check): it is judged by the CRL tests, not here.
    const judged = live.filter((l) => !this.revoked.has(l.serial));
    const pairs = [...kind.keys()].flatMap((bundle) => judged.map((l) => ({ bundle, l, want: mustTrust(bundle, l) })));
    if (!pairs.length) return;
    const when = at(this.now);
    const epoch = String(Math.floor(this.now.getTime() / 1000));
    const go = spawnSync(GOBATCH, { input: pairs.map((p) => `${path.join(this.dir, `bundles/${p.bundle}/trust.pem`)}\t${p.l.file}\t${when}`).join('\n') + '\n', encoding: 'utf8' });
    expect(go.status, go.stderr).toBe(0);
    const goVerdicts = go.stdout.trim().split('\n');
    // One OpenSSL run per bundle, every judged leaf in it: "FILE: OK" for each that verifies.
    const sslOk = new Map<string, Set<string>>();
    for (const bundle of kind.keys()) {
      const ssl = spawnSync('openssl', ['verify', '-x509_strict', '-purpose', 'sslclient', '-attime', epoch, '-CAfile', path.join(this.dir, `bundles/${bundle}/trust.openssl.pem`), ...judged.map((l) => l.file)], { encoding: 'utf8' });
      sslOk.set(bundle, new Set(ssl.stdout.split('\n').filter((l) => l.endsWith(': OK')).map((l) => l.slice(0, -': OK'.length))));
    }
    pairs.forEach((p, i) => {
      const what = `${p.l.scope}/${p.l.service} serial ${p.l.serial} against bundles/${p.bundle} at ${when}; steps: ${this.log.join(' | ')}`;
      expect(sslOk.get(p.bundle)!.has(p.l.file), `OpenSSL: ${what}`).toBe(p.want);
      expect(goVerdicts[i] === 'OK', `Go: ${what}: ${goVerdicts[i]}`).toBe(p.want);
    });
  }
}

/**
 * The same steps through the real CLIs, as an operator runs them: a refusal is
 * a non-zero exit, and the leaves are whatever renew and revoke wrote to --out.
 */
class CliModel extends Model {
  constructor(private readonly fake: FakeMesh, scratch: string) {
    super(fake.dir, scratch, [], []);
  }

  protected override locked<T>(fn: () => Promise<T>): Promise<T> {
    return fn(); // each CLI takes the store lock itself
  }

  private async cli(r: Promise<{ code: number; stderr: string }>): Promise<'done'> {
    const { code, stderr } = await r;
    if (code === 0) return 'done';
    expect(code, `a CLI refusal must be a usage or failure code, not custody: ${stderr}`).toBeLessThan(3);
    throw new TrellisError('verification-failed', stderr.trim());
  }

  /** Tracks every cert.pem in the output directory not seen before. */
  private collect(): void {
    const out = path.join(this.scratch, 'out');
    if (!fs.existsSync(out)) return;
    for (const scope of fs.readdirSync(out)) {
      // Leaf directories only: the scope's trust and CRL files sit beside them.
      for (const service of fs.readdirSync(path.join(out, scope), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name)) {
        const pem = fs.readFileSync(path.join(out, scope, service, 'cert.pem'), 'utf8');
        const cert = parseCertificate(pem);
        if (this.leaves.some((l) => l.serial === cert.serialNumber)) continue;
        const rec = this.mesh().material.get(scope)?.leaves.get(service);
        this.track(scope, [{ service, certPem: pem, cert, record: { serial: cert.serialNumber, issuerKey: rec?.issuerKey ?? '' } }]);
      }
    }
  }

  protected override async run(s: Step): Promise<'done' | 'skipped'> {
    const mesh = this.mesh();
    const out = ['--out', path.join(this.scratch, 'out')];
    const now = () => ['--now', at(this.now)];
    switch (s.kind) {
      case 'renew':
        this.now = new Date(this.now.getTime() + s.hours * HOUR);
        await this.cli(this.fake.ci(['renew', ...out, ...now()]));
        this.collect();
        return 'done';
      case 'add-region': {
        const name = `r${++this.regions}`;
        this.fake.writeScope(name, ['api']);
        const r = await this.fake.root(['intermediate', name, ...now()]);
        if (r.code !== 0) fs.rmSync(this.fake.path(`scopes/${name}.yaml`));
        return this.cli(Promise.resolve(r));
      }
      case 'rotate':
        return this.cli(this.fake.root(['rotate', 'intermediate', this.pick(mesh, s.scope)!, '--propagation', `${s.propagationHours}h`, ...now()]));
      case 'abort':
        return this.cli(this.fake.root(['rotate', 'intermediate', this.pick(mesh, s.scope)!, '--abort', ...now()]));
      case 'recover': {
        const scope = this.pick(mesh, s.scope)!;
        const burned = liveIntermediates(mesh, scope).map((l) => keyId(l.cert));
        await this.cli(this.fake.root(['recover', scope, ...now()]));
        burned.forEach((k) => this.burned.add(k));
        return 'done';
      }
      case 'revoke': {
        const scope = this.pick(mesh, s.scope)!;
        const services = mesh.scopes.find((x) => x.name === scope)!.services.map((x) => x.name);
        const service = services[s.service % services.length]!;
        const serial = mesh.material.get(scope)!.leaves.get(service)?.serial;
        await this.cli(this.fake.ci(['revoke', `${scope}/${service}`, ...out, ...now()]));
        if (serial) this.revoked.add(serial);
        this.collect();
        return 'done';
      }
      case 'root-rotate':
        return this.cli(this.fake.root(['rotate', 'root', ...now()]));
      case 'root-finalize':
        return this.cli(this.fake.root(['rotate', 'root', '--finalize', ...now()]));
      case 'delete-scope': {
        const scope = this.pick(mesh, s.scope, true);
        if (!scope || mesh.scopes.filter((x) => x.kind === 'region').length < 2) return 'skipped';
        fs.rmSync(this.fake.path(`scopes/${scope}.yaml`));
        this.pendingRetire.add(scope);
        return 'done';
      }
      case 'retire': {
        const pending = [...this.pendingRetire][0];
        if (pending) {
          const burned = liveIntermediates(mesh, pending).map((l) => keyId(l.cert));
          await this.cli(this.fake.root(['retire', pending, ...now()]));
          burned.forEach((k) => this.burned.add(k));
          this.pendingRetire.delete(pending);
          return 'done';
        }
        const scope = this.pick(mesh, s.scope, true);
        if (!scope || mesh.scopes.filter((x) => x.kind === 'region').length < 2) return 'skipped';
        const text = this.fake.read(`scopes/${scope}.yaml`);
        fs.rmSync(this.fake.path(`scopes/${scope}.yaml`));
        const burned = liveIntermediates(mesh, scope).map((l) => keyId(l.cert));
        const r = await this.fake.root(['retire', scope, ...now()]);
        if (r.code !== 0) this.fake.write(`scopes/${scope}.yaml`, text);
        await this.cli(Promise.resolve(r));
        burned.forEach((k) => this.burned.add(k));
        return 'done';
      }
    }
  }

  override async check(): Promise<void> {
    const v = await this.fake.ci(['verify', '--now', at(this.now)]);
    expect(v.code, `trellis-ci verify after: ${this.log.join(' | ')}\n${v.stdout}`).toBe(0);
    await super.check();
  }
}

function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(path.join(dir, d), { withFileTypes: true })) {
      const rel = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== '.trellis') walk(rel);
      } else out[rel] = sha256Hex(fs.readFileSync(path.join(dir, rel)));
    }
  };
  walk('');
  return out;
}

let pristine: FakeMesh;
let rootIds: string[];
let ciIds: string[];

beforeAll(async () => {
  pristine = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] }, now: at(T0) });
  const read = (p: string) => fs.readFileSync(p, 'utf8');
  rootIds = readIdentities('root', { TRELLIS_ROOT_IDENTITY_FILE: pristine.rootIdentityFile }, read)!;
  ciIds = readIdentities('ci', { TRELLIS_CI_IDENTITY_FILE: pristine.ciIdentityFile }, read)!;
  execFileSync('bash', [path.join(REPO, 'scripts/build-goverify.sh')]);
}, 120_000);

/** A fresh copy of the pristine mesh, its first leaves tracked. */
function freshModel(): Model {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-model-'));
  fs.cpSync(pristine.dir, path.join(base, 'store'), { recursive: true });
  const m = new Model(path.join(base, 'store'), base, rootIds, ciIds);
  const mesh = m.mesh();
  for (const s of mesh.scopes) {
    for (const [service] of mesh.material.get(s.name)!.leaves) {
      const certPem = fs.readFileSync(pristine.out(s.name, service, 'cert.pem'), 'utf8');
      const cert = parseCertificate(certPem);
      m.leaves.push({ scope: s.name, service, file: pristine.out(s.name, service, 'cert.pem'), cert, issuerKey: mesh.material.get(s.name)!.leaves.get(service)!.issuerKey!, serial: cert.serialNumber });
    }
  }
  return m;
}

async function runSequence(steps: Step[]): Promise<void> {
  const m = freshModel();
  try {
    await m.check();
    for (const s of steps) {
      await m.apply(s);
      await m.check();
    }
  } finally {
    fs.rmSync(m.scratch, { recursive: true, force: true });
  }
}

/**
 * Counterexamples the model found, shrunk by fast-check and kept as fixed cases.
 * Each names what was wrong before it was fixed.
 */
const REGRESSIONS: [string, Step[]][] = [
  ['a region added while another scope is in publish keeps that scope\'s next intermediate in every bundle', [
    { kind: 'rotate', scope: 1, propagationHours: 1 }, { kind: 'add-region' }, { kind: 'renew', hours: 2 }, { kind: 'renew', hours: 1 },
  ]],
  ['a region added during a switch keeps the previous intermediate, so leaves it signed still verify', [
    { kind: 'rotate', scope: 2, propagationHours: 1 }, { kind: 'renew', hours: 2 }, { kind: 'add-region' }, { kind: 'renew', hours: 1 },
  ]],
  ['a region deleted by pull request stays trusted by the global scope until its retire ceremony; renew in between recomposes nothing away', [
    { kind: 'add-region' }, { kind: 'renew', hours: 1 }, { kind: 'delete-scope', scope: 3 }, { kind: 'renew', hours: 2 }, { kind: 'retire', scope: 0 }, { kind: 'renew', hours: 1 },
  ]],
  ['a retired region\'s leaves verify nowhere, the rest keep verifying', [
    { kind: 'add-region' }, { kind: 'renew', hours: 1 }, { kind: 'retire', scope: 0 }, { kind: 'renew', hours: 1 },
  ]],
  ['two recoveries of one scope at one instant keep two evidence records (the second used to overwrite the first, which its ledger entry had linked)', [
    { kind: 'recover', scope: 1 }, { kind: 'recover', scope: 1 }, { kind: 'renew', hours: 1 },
  ]],
  ['recovery during a root overlap, then finalize', [
    { kind: 'root-rotate' }, { kind: 'recover', scope: 1 }, { kind: 'renew', hours: 1 }, { kind: 'root-finalize' }, { kind: 'renew', hours: 1 },
  ]],
  ['an abort after the switch keeps trusting the aborted key until the leaves it signed have expired', [
    { kind: 'rotate', scope: 1, propagationHours: 1 }, { kind: 'renew', hours: 2 }, { kind: 'abort', scope: 1 }, { kind: 'renew', hours: 1 },
  ]],
];

/** One sequence of every procedure, replayed through the real CLIs: the in-process model and the commands must agree. */
const CLI_SAMPLE: Step[] = [
  { kind: 'rotate', scope: 1, propagationHours: 2 }, { kind: 'add-region' }, { kind: 'renew', hours: 3 }, { kind: 'revoke', scope: 2, service: 0 },
  { kind: 'abort', scope: 1 }, { kind: 'renew', hours: 24 }, { kind: 'recover', scope: 2 }, { kind: 'renew', hours: 1 }, { kind: 'delete-scope', scope: 0 }, { kind: 'renew', hours: 1 }, { kind: 'retire', scope: 0 },
  { kind: 'renew', hours: 200 }, { kind: 'root-rotate' }, { kind: 'renew', hours: 1 }, { kind: 'root-finalize' }, { kind: 'renew', hours: 1 },
];

describe('model sampled through the real CLIs', () => {
  it('rotate, add a region mid-rotation, revoke, abort after the switch, recover, retire, rotate the root: verify clean and every leaf where it must be', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-model-cli-'));
    const fake = pristine.clone();
    const m = new CliModel(fake, base);
    for (const s of freshModel().leaves) m.leaves.push(s);
    await m.check();
    for (const s of CLI_SAMPLE) {
      expect(await m.apply(s), `${JSON.stringify(s)}: ${m.log.at(-1)}`).toBe('done');
      await m.check();
    }
  }, 600_000);
});

describe('model: procedures in any order', () => {
  it.each(REGRESSIONS)('%s', async (_name, steps) => {
    await runSequence(steps);
  }, 120_000);

  it(`${RUNS} random sequences keep verify clean and every live leaf trusted exactly where it must be`, async () => {
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 3, maxLength: 10 }), runSequence), { numRuns: RUNS, endOnFailure: true });
  }, 900_000);
});
