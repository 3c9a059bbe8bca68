/**
 * MemoryMesh: a loaded mesh from a few lines of spec whose store is a map of files in memory, with the procedures
 * called in-process on a simulated clock (as tests/model.test.ts drives them), for the pure rules: trust, rotation,
 * custody decisions, verify findings, health, plans. What is about the process (the CLI contract, crash and kill
 * points, posture, real peers and servers) stays on FakeMesh and the real CLIs.
 *
 *   const m = await MemoryMesh.create({ scopes: { global: ['control'], 'us-east-1': ['api'] }, now: at(T0) });
 *   await m.renew(later);                     // the CI's renew, in-process, into this map
 *   expect((await m.verify(later)).filter((f) => f.level === 'error')).toEqual([]);
 *
 * It reads this run's first store of the spec (fake-mesh.ts `templateOf`, made once by the real CLIs and shared by
 * every test file) into memory, so a case costs no process and no disk.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  isTrellisError,
  mergeWrites,
  nodeCryptoSeam,
  readIdentities,
  revokeLeaf,
  verifyMesh,
  type FileWrite,
  type Finding,
  type Mesh,
  type TrellisError,
} from '@trellis/core';
import { custodyFindings } from '../../packages/core/src/verify/verify.js';
import { Store, loadMesh } from '@trellis/core/store';
import { openRootKey, openRootKeys } from '../../packages/offline/src/ceremony.js';
import {
  abortIntermediateRotation,
  beginIntermediateRotation,
  beginRootRotation,
  ceremonyIntermediates,
  finalizeRootRotation,
  recoverScope,
  resignRootCrl,
  type Ceremony,
  type ProcedureResult,
} from '../../packages/offline/src/root-procedures.js';
import { renewStore } from '../../packages/ci/src/commands/renew.js';
import { openScopeKeys } from '../../packages/ci/src/issue.js';
import { type FakeMesh, templateOf, type MeshSpec } from './fake-mesh.js';
import { trellisCi, trellisRoot, type Env, type Run } from './cli.js';

/** A MemoryMesh written to disk, for the one subprocess case that guards a CLI contract. */
export interface DiskMesh {
  dir: string;
  path(rel: string): string;
  read(rel: string): string;
  write(rel: string, text: string): void;
  root(args: string[], env?: Env): Promise<Run>;
  ci(args: string[], env?: Env): Promise<Run>;
  /** Every file of the store (outside .trellis), as MemoryMesh.snapshot gives it. */
  snapshot(): Record<string, string>;
}

/** A Store over a map of files: reads, listings and commits never touch the disk. */
class MemoryStore extends Store {
  constructor(
    readonly files: Map<string, string>,
    dir: string,
    private readonly pending = false,
  ) {
    super(dir);
  }

  /** The store as it will be once `writes` are committed, listings included; read-only. */
  override withPending(writes: FileWrite[]): Store {
    const view = new MemoryStore(new Map(this.files), this.dir, true);
    view.apply(writes);
    return view;
  }

  override read(rel: string): string | undefined {
    return this.files.get(rel);
  }

  override exists(rel: string): boolean {
    return this.files.has(rel) || [...this.files.keys()].some((f) => f.startsWith(`${rel}/`));
  }

  override list(rel: string, kind: 'file' | 'dir' = 'file'): string[] {
    const names = new Set<string>();
    for (const f of this.files.keys()) {
      if (!f.startsWith(`${rel}/`)) continue;
      const [first, ...rest] = f.slice(rel.length + 1).split('/');
      if ((kind === 'dir') === rest.length > 0) names.add(first!);
    }
    return [...names].sort();
  }

  /** Applies the writes (one per path, as the journal does); nothing here can fail halfway. */
  override commit(writes: FileWrite[]): void {
    if (this.pending) throw new Error('a pending view is read-only: commit on the store it was made from');
    this.apply(writes);
  }

  private apply(writes: FileWrite[]): void {
    for (const w of mergeWrites(writes)) {
      if (w.content === null) this.files.delete(w.path);
      else this.files.set(w.path, w.content);
    }
  }

  override replayJournal(): boolean {
    return false;
  }

  override async withLock<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
}

/** Every file under `dir`, by its path relative to `dir`, leaving out `skip` (a top-level name). */
function readTree(dir: string, skip?: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && e.name === skip) continue;
      if (e.isDirectory()) walk(r);
      else out.set(r, fs.readFileSync(path.join(dir, r), 'utf8'));
    }
  };
  walk('');
  return out;
}

const sorted = (m: Map<string, string>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));

export class MemoryMesh {
  readonly store: MemoryStore;
  /** Where renew writes leaves (keys, chains): a directory made on the first renew. */
  private outDir?: string;

  private constructor(
    /** The store the real CLIs made, on disk, that this one was read from (never written), and its identity files. */
    readonly source: Pick<FakeMesh, 'dir' | 'rootIdentityFile' | 'ciIdentityFile'>,
    files: Map<string, string>,
    /** The leaves the first renew wrote (.trellis/out), by `scope/service/file`. */
    readonly firstOut: ReadonlyMap<string, string>,
    readonly rootIds: string[],
    readonly ciIds: string[],
  ) {
    this.store = new MemoryStore(files, '/memory-mesh');
  }

  static async create(spec: MeshSpec): Promise<MemoryMesh> {
    const dir = await templateOf(spec);
    return MemoryMesh.of({
      dir: path.join(dir, 'store'),
      rootIdentityFile: path.join(dir, 'root.identity'),
      ciIdentityFile: path.join(dir, 'ci.identity'),
    });
  }

  /** A store on disk (a FakeMesh a test already made) read into memory; the disk copy is never written. */
  static of(fake: Pick<FakeMesh, 'dir' | 'rootIdentityFile' | 'ciIdentityFile'>): MemoryMesh {
    const read = (p: string) => fs.readFileSync(p, 'utf8');
    const out = path.join(fake.dir, '.trellis/out');
    return new MemoryMesh(
      fake,
      readTree(fake.dir, '.trellis'),
      fs.existsSync(out) ? readTree(out) : new Map(),
      readIdentities('root', { TRELLIS_ROOT_IDENTITY_FILE: fake.rootIdentityFile }, read)!,
      readIdentities('ci', { TRELLIS_CI_IDENTITY_FILE: fake.ciIdentityFile }, read)!,
    );
  }

  /** An independent copy, for a case that changes the store. */
  clone(): MemoryMesh {
    return new MemoryMesh(this.source, new Map(this.store.files), this.firstOut, this.rootIds, this.ciIds);
  }

  mesh(): Mesh {
    return loadMesh(this.store);
  }

  /** A file of the store; throws when there is none (as FakeMesh.read does). */
  read(rel: string): string {
    const text = this.store.files.get(rel);
    if (text === undefined) throw new Error(`no ${rel} in the store`);
    return text;
  }

  write(rel: string, text: string): void {
    this.store.files.set(rel, text);
  }

  remove(rel: string): void {
    this.store.files.delete(rel);
  }

  /** Every file of the store with its content: for byte-identical comparisons. */
  snapshot(): Record<string, string> {
    return sorted(this.store.files);
  }

  /**
   * verify's findings at `now`; with `held`, also what that CLI proves with its identity (custodyFindings), as
   * `trellis-ci verify` does with TRELLIS_CI_IDENTITY_FILE set. The disk-only secret scan is the CLI's.
   */
  async verify(now: Date, held?: 'ci' | 'root'): Promise<Finding[]> {
    const mesh = this.mesh();
    const ids = held === 'ci' ? this.ciIds : this.rootIds;
    return [
      ...(await verifyMesh(mesh, now, (rel) => this.store.read(rel))),
      ...(held ? await custodyFindings(mesh, { [held]: ids }) : []),
    ];
  }

  /** The CI's renew, in-process (no worker pool): its printed lines, and what it minted. */
  async renew(
    now: Date,
    o: { scope?: string; shard?: boolean; force?: boolean; dryRun?: boolean } = {},
  ): Promise<{ lines: string[]; minted: number }> {
    this.outDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-memory-out-'));
    const lines: string[] = [];
    const r = await renewStore(
      this.store,
      { now, out: this.outDir, ...o },
      async () => this.ciIds,
      (l) => lines.push(l),
    );
    return { lines, minted: (r?.minted ?? []).reduce((n, m) => n + m.leaves.length, 0) };
  }

  /** A ceremony's context at `now`, on the store as it is. */
  ceremony(now: Date): Ceremony {
    return {
      mesh: this.mesh(),
      now,
      posture: { allowOnline: true, onlineInterfaces: [] },
      actor: 'memory-mesh',
      recipients: {},
      seam: nodeCryptoSeam,
    };
  }

  private async commit(r: Promise<ProcedureResult> | ProcedureResult): Promise<string[]> {
    const { writes, report } = await r;
    this.store.commit(writes);
    return report;
  }

  /** trellis-root intermediate for these scopes (a pending scope's first intermediate). */
  async intermediates(scopes: string[], now: Date): Promise<string[]> {
    const c = this.ceremony(now);
    return this.commit(ceremonyIntermediates(c, scopes, await openRootKey(c.mesh, this.rootIds, now)));
  }

  /** trellis-root rotate intermediate SCOPE [--propagation]: by default the mesh's (defaults.overlap.propagation). */
  async rotate(scope: string, propagationMs: number | undefined, now: Date): Promise<string[]> {
    const c = this.ceremony(now);
    const propagation = propagationMs ?? c.mesh.config.overlap.propagation;
    return this.commit(beginIntermediateRotation(c, scope, propagation, await openRootKey(c.mesh, this.rootIds, now)));
  }

  /** trellis-root crl: the root CRL re-signed. */
  async crl(now: Date): Promise<string[]> {
    const c = this.ceremony(now);
    return this.commit(resignRootCrl(c, await openRootKeys(c.mesh, this.rootIds, now)));
  }

  /** trellis-root rotate intermediate SCOPE --abort. */
  async abort(scope: string, now: Date): Promise<string[]> {
    const c = this.ceremony(now);
    return this.commit(abortIntermediateRotation(c, scope, await openRootKey(c.mesh, this.rootIds, now)));
  }

  /** trellis-root recover SCOPE. */
  async recover(scope: string, now: Date): Promise<string[]> {
    const c = this.ceremony(now);
    return this.commit(recoverScope(c, scope, 'keyCompromise', await openRootKeys(c.mesh, this.rootIds, now)));
  }

  /** trellis-root rotate root, and its finalize. */
  async rotateRoot(now: Date, step: 'begin' | 'finalize' = 'begin'): Promise<string[]> {
    const c = this.ceremony(now);
    const key = await openRootKey(c.mesh, this.rootIds, now);
    return this.commit(step === 'begin' ? beginRootRotation(c, key) : finalizeRootRotation(c, key));
  }

  /** trellis-ci revoke SCOPE/SERVICE. */
  async revoke(scope: string, service: string, now: Date): Promise<void> {
    const mesh = this.mesh();
    const r = await revokeLeaf(
      mesh,
      scope,
      service,
      'keyCompromise',
      await openScopeKeys(mesh, scope, this.ciIds),
      now,
      'memory-mesh',
      nodeCryptoSeam,
    );
    this.store.commit(r.writes);
  }

  /** This store written to a fresh directory, with the real CLIs and the template's identities bound to it. */
  onDisk(): DiskMesh {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-memory-disk-')), 'store');
    for (const [rel, text] of this.store.files) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    }
    return {
      dir,
      path: (rel) => path.join(dir, rel),
      read: (rel) => fs.readFileSync(path.join(dir, rel), 'utf8'),
      write: (rel, text) => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
      },
      root: (args, env = {}) =>
        trellisRoot(['--store', dir, ...args], {
          env: { TRELLIS_ROOT_IDENTITY_FILE: this.source.rootIdentityFile, ...env },
        }),
      ci: (args, env = {}) =>
        trellisCi(['--store', dir, ...args], {
          env: { TRELLIS_CI_IDENTITY_FILE: this.source.ciIdentityFile, ...env },
        }),
      snapshot: () => sorted(readTree(dir, '.trellis')),
    };
  }

  /** Runs a step that must be refused: the TrellisError, after checking the store is byte-identical. */
  async refused(step: () => Promise<unknown>): Promise<TrellisError> {
    const before = this.snapshot();
    try {
      await step();
    } catch (e) {
      if (!isTrellisError(e)) throw e;
      const after = this.snapshot();
      if (JSON.stringify(after) !== JSON.stringify(before))
        throw new Error(`a refusal changed the store: ${e.message}`);
      return e;
    }
    throw new Error('the step was not refused');
  }
}
