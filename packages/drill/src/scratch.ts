/**
 * A scratch mesh of the real mesh's shape, in a temporary directory, on
 * throwaway identities: the real CLIs run against it exactly as an operator
 * and CI would, with `--now` for the simulated clock.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { stringify, parse } from 'yaml';
import { TrellisError, formatDuration, toYaml, type ScopeDef } from '@trellis/core';
import type { MeshShape } from './shape.js';

/**
 * The CLIs the drill runs: beside it in a release (dist/trellis-root.mjs …), else the workspace's
 * builds. Resolved when first used: a release has no workspace to resolve from.
 */
const binOf = (pkg: string, released: string) => (): string => {
  const beside = fileURLToPath(new URL(`./${released}`, import.meta.url));
  if (import.meta.url.endsWith('.mjs') && fs.existsSync(beside)) return beside;
  return path.join(path.dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`)), 'dist/main.js');
};
const ROOT_BIN = binOf('@trellis/offline', 'trellis-root.mjs');
const CI_BIN = binOf('@trellis/ci', 'trellis-ci.mjs');

export const rfc3339 = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');

export type StepLog = (line: string) => void;

/** The scope file of a scratch scope: names and TTLs as declared, without deploy targets (a drill delivers nowhere). */
function scratchScopeYaml(s: ScopeDef): string {
  const services: Record<string, unknown> = {};
  for (const svc of s.services) {
    const v: Record<string, unknown> = {};
    if (svc.dns.length) v.dns = svc.dns;
    if (svc.ttl !== undefined) v.ttl = formatDuration(svc.ttl);
    services[svc.name] = v;
  }
  return toYaml({ kind: s.kind, services });
}

export class ScratchMesh {
  readonly store: string;
  private readonly rootId: string;
  private readonly ciId: string;

  private constructor(
    readonly dir: string,
    readonly label: string,
    private readonly log: StepLog,
  ) {
    this.store = path.join(dir, 'store');
    this.rootId = path.join(dir, 'root.identity');
    this.ciId = path.join(dir, 'ci.identity');
  }

  /** init (throwaway root and CI identities), the shape's scope files and the mesh's defaults; no ceremony yet. */
  static async create(
    dir: string,
    label: string,
    shape: MeshShape,
    at: Date,
    log: StepLog,
    scopes = shape.scopes,
  ): Promise<ScratchMesh> {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const m = new ScratchMesh(dir, label, log);
    const id = await m.root(
      [
        'init',
        '--mesh',
        `${shape.mesh}-${label}`,
        '--trust-domain',
        shape.trustDomain,
        '--ci-identity-out',
        m.ciId,
        '--now',
        rfc3339(at),
      ],
      { quiet: true, identity: false },
    );
    fs.writeFileSync(m.rootId, id, { mode: 0o600 });
    const config = parse(fs.readFileSync(path.join(m.store, 'trellis.yaml'), 'utf8')) as Record<string, unknown>;
    if (shape.defaults !== undefined) {
      fs.writeFileSync(path.join(m.store, 'trellis.yaml'), stringify({ ...config, defaults: shape.defaults }));
      // The mesh's own defaults are a signing policy like any other: the (throwaway) custodian confirms them.
      await m.root(['confirm', '--now', rfc3339(at)], { quiet: true });
    }
    for (const s of scopes) fs.writeFileSync(path.join(m.store, 'scopes', `${s.name}.yaml`), scratchScopeYaml(s));
    return m;
  }

  /**
   * trellis-root on the scratch store with the throwaway root identity (online by design: nothing real is at stake).
   */
  async root(args: string[], opts: { quiet?: boolean; identity?: boolean } = {}): Promise<string> {
    const env = {
      TRELLIS_ALLOW_ONLINE: '1',
      ...(opts.identity === false ? {} : { TRELLIS_ROOT_IDENTITY_FILE: this.rootId }),
    };
    return this.run('trellis-root', ROOT_BIN(), args, env, opts.quiet);
  }

  /** trellis-ci on the scratch store: CI=true and the throwaway CI identity. */
  async ci(args: string[], opts: { quiet?: boolean; allowFail?: boolean } = {}): Promise<string> {
    return this.run(
      'trellis-ci',
      CI_BIN(),
      args,
      { CI: 'true', TRELLIS_CI_IDENTITY_FILE: this.ciId },
      opts.quiet,
      opts.allowFail,
    );
  }

  private async run(
    tool: string,
    bin: string,
    args: string[],
    extra: Record<string, string>,
    quiet = false,
    allowFail = false,
  ): Promise<string> {
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? this.dir,
      TRELLIS_ACTOR: 'trellis-drill',
      ...extra,
    };
    // The drill's clock is simulated on throwaway keys: its --now runs ahead of the real one by design.
    const ahead = args.includes('--now') ? ['--now-ahead'] : [];
    const r = await execa(process.execPath, [bin, '--store', this.store, ...args, ...ahead], {
      env,
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
    });
    if (!quiet) this.log(`$ ${tool} ${args.join(' ')}${this.label === 'mesh' ? '' : `   (${this.label})`}`);
    if (r.exitCode !== 0 && !allowFail) {
      throw new TrellisError(
        'peer-failed',
        `${tool} ${args.join(' ')} failed in the rehearsal (exit ${r.exitCode}): ${String(r.stderr).trim()}`,
        {
          hint: "the procedure itself failed on this mesh's shape: this is what the real run would meet",
        },
      );
    }
    if (!quiet)
      for (const l of `${r.stdout}${allowFail ? r.stderr : ''}`.trimEnd().split('\n').filter(Boolean))
        this.log(`  ${l}`);
    return String(r.stdout);
  }

  file(rel: string): string {
    return fs.readFileSync(path.join(this.store, rel), 'utf8');
  }
}
