/**
 * FakeMesh: a real store made with the real CLIs from a few lines of spec, so
 * a test states only what it is about.
 *
 *   const m = await FakeMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] } });
 *
 * The first store of each spec is made once per run (init, the ceremony, the first renew) and every later `create` of
 * that spec, in any test file, is a copy of it: the same keys, a directory of its own. A test that needs keys no other
 * mesh has (two meshes told apart) uses `FakeMesh.fresh`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { ROOT_BIN, trellisCi, trellisRoot, type Env, type Run } from './cli.js';

export type ServiceSpec =
  | string
  | Record<string, { dns?: string[]; ttl?: string; deploy?: Record<string, unknown>[]; key?: string }>;

export interface MeshSpec {
  /** scope name → its services; `global` is kind global, every other scope a region. */
  scopes: Record<string, ServiceSpec[]>;
  trustDomain?: string;
  /** When the offline steps and the first renew happen. */
  now?: string;
  /** Mint intermediates (default true) and leaves (default true). */
  intermediates?: boolean;
  leaves?: boolean;
  algorithm?: string;
  /**
   * trellis.yaml's `defaults:` groups to change after init, confirmed by the custodian (trellis-root confirm) before
   * any ceremony.
   */
  defaults?: Record<string, Record<string, string>>;
}

export class FakeMesh {
  private constructor(
    readonly dir: string,
    readonly rootIdentityFile: string,
    readonly ciIdentityFile: string,
  ) {}

  /** A copy of this run's first store of `spec` (made now if there is none yet). */
  static async create(spec: MeshSpec): Promise<FakeMesh> {
    const template = await templateOf(spec);
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-test-'));
    fs.cpSync(template, base, { recursive: true, filter: (src) => src !== path.join(template, 'ready') });
    return new FakeMesh(path.join(base, 'store'), path.join(base, 'root.identity'), path.join(base, 'ci.identity'));
  }

  /** A store of `spec` with keys of its own, made by the real CLIs. */
  static async fresh(spec: MeshSpec): Promise<FakeMesh> {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-test-'));
    const dir = path.join(base, 'store');
    const m = new FakeMesh(dir, path.join(base, 'root.identity'), path.join(base, 'ci.identity'));
    const now = spec.now ? ['--now', spec.now, '--now-ahead'] : [];
    const init = await trellisRoot([
      'init',
      '--store',
      dir,
      '--mesh',
      'test',
      '--trust-domain',
      spec.trustDomain ?? 'mesh.example',
      '--ci-identity-out',
      m.ciIdentityFile,
      '--algorithm',
      spec.algorithm ?? 'ecdsa-p256',
      ...now,
    ]);
    if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
    fs.writeFileSync(m.rootIdentityFile, init.stdout, { mode: 0o600 });
    for (const [scope, services] of Object.entries(spec.scopes)) m.writeScope(scope, services);
    if (spec.defaults) await m.setDefaults(spec.defaults, { now: spec.now });
    if (spec.intermediates !== false) {
      const r = await m.root(['intermediate', '--pending', ...now]);
      if (r.code !== 0) throw new Error(`intermediate failed: ${r.stderr}`);
      if (spec.leaves !== false) {
        const n = await m.ci(['renew', ...now]);
        if (n.code !== 0) throw new Error(`renew failed: ${n.stderr}`);
      }
    }
    return m;
  }

  writeScope(scope: string, services: ServiceSpec[]): void {
    const svc: Record<string, unknown> = {};
    for (const s of services) {
      if (typeof s === 'string') svc[s] = {};
      else Object.assign(svc, s);
    }
    this.write(`scopes/${scope}.yaml`, stringify({ kind: scope === 'global' ? 'global' : 'region', services: svc }));
  }

  /**
   * Sets trellis.yaml's deploy allow-list and has the custodian confirm it
   * (trellis-root confirm), as deploy requires before it runs anything.
   */
  async allow(deploy: Record<string, unknown>, opts: { confirm?: boolean; now?: string } = {}): Promise<void> {
    this.write('trellis.yaml', stringify({ ...parse(this.read('trellis.yaml')), deploy }));
    if (opts.confirm === false) return;
    const r = await this.root(['confirm', ...(opts.now ? ['--now', opts.now, '--now-ahead'] : [])]);
    if (r.code !== 0) throw new Error(`confirm failed: ${r.stderr}`);
  }

  /**
   * Changes groups of trellis.yaml's `defaults:` (the signing policy) and, unless told not to, has the custodian
   * confirm them.
   */
  async setDefaults(
    defaults: Record<string, Record<string, string>>,
    opts: { confirm?: boolean; now?: string } = {},
  ): Promise<void> {
    const config = parse(this.read('trellis.yaml'));
    for (const [k, v] of Object.entries(defaults)) config.defaults[k] = { ...config.defaults[k], ...v };
    this.write('trellis.yaml', stringify(config));
    if (opts.confirm === false) return;
    const r = await this.root(['confirm', ...(opts.now ? ['--now', opts.now] : [])]);
    if (r.code !== 0) throw new Error(`confirm failed: ${r.stderr}`);
  }

  /** trellis-root with the offline identity (unless the test overrides the env). */
  root(args: string[], env: Env = {}): Promise<Run> {
    return trellisRoot(['--store', this.dir, ...args], {
      env: { TRELLIS_ROOT_IDENTITY_FILE: this.rootIdentityFile, ...env },
    });
  }

  /** trellis-ci with the CI identity (unless the test overrides the env). */
  ci(args: string[], env: Env = {}): Promise<Run> {
    return trellisCi(['--store', this.dir, ...args], {
      env: { TRELLIS_CI_IDENTITY_FILE: this.ciIdentityFile, ...env },
    });
  }

  path(rel: string): string {
    return path.join(this.dir, rel);
  }

  out(scope: string, service: string, file: string): string {
    return path.join(this.dir, '.trellis/out', scope, service, file);
  }

  read(rel: string): string {
    return fs.readFileSync(this.path(rel), 'utf8');
  }

  write(rel: string, text: string): void {
    fs.mkdirSync(path.dirname(this.path(rel)), { recursive: true });
    fs.writeFileSync(this.path(rel), text);
  }

  /** Every file of the store (outside .trellis) with its content: for old-or-new comparisons. */
  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (d: string) => {
      for (const e of fs.readdirSync(path.join(this.dir, d), { withFileTypes: true })) {
        const rel = path.join(d, e.name);
        if (e.isDirectory()) {
          if (e.name !== '.trellis') walk(rel);
        } else out[rel] = fs.readFileSync(path.join(this.dir, rel), 'utf8');
      }
    };
    walk('');
    return out;
  }

  /** An independent copy, for tests that damage the store. */
  clone(): FakeMesh {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-test-'));
    fs.cpSync(this.dir, path.join(base, 'store'), { recursive: true });
    return new FakeMesh(path.join(base, 'store'), this.rootIdentityFile, this.ciIdentityFile);
  }
}

/**
 * This run's first store of a spec, shared by every test file: a directory (store/ and the two identities) keyed by
 * the spec, the run's clock and the CLIs' build, so a template of another run or another build is never taken.
 */
export async function templateOf(spec: MeshSpec): Promise<string> {
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify([spec, process.env.TRELLIS_TEST_NOW ?? String(process.pid), fs.statSync(ROOT_BIN).mtimeMs]))
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(os.tmpdir(), `trellis-mesh-template-${key}`);
  if (fs.existsSync(path.join(dir, 'ready'))) return dir;
  const made = await FakeMesh.fresh(spec);
  const base = path.dirname(made.dir);
  fs.writeFileSync(path.join(base, 'ready'), '');
  try {
    fs.renameSync(base, dir);
  } catch {
    // Another worker made the same one meanwhile: its copy is as good.
    return fs.existsSync(path.join(dir, 'ready')) ? dir : base;
  }
  return dir;
}
