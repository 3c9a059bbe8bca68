/**
 * One rehearsal: a scratch mesh of the real shape stood up in the past, a
 * stranger mesh for the unknown-CA client, and a checklist matrix at every
 * phase of the procedure, on the simulated clock.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { GLOBAL_SCOPE, POLICY_CEILINGS, edgeCrl, nextGate, type Finding, type ScopeDef } from '@trellis/core';
import { Store, loadMesh } from '@trellis/core/store';
import {
  expectHandshake,
  renderPhase,
  totalCells,
  wrongCells,
  type Check,
  type Host,
  type PhaseResult,
  type Role,
} from './checklist.js';
import type { Cell } from './mtls.js';
import { probeAt } from './probe-at.js';
import { ScratchMesh, rfc3339 } from './scratch.js';
import { rehearsalShape, type MeshShape } from './shape.js';

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
/**
 * At most this many services of the rehearsed scope take part in the matrix: the checklist needs a few, not a fleet.
 */
const SERVICES_PER_SCOPE = 3;
/** Longer than any rehearsal's span: the longest leaf a mesh accepts. */
const STRANGER_LEAF_TTL = POLICY_CEILINGS.ttl.leaf;

export interface RehearsalOptions {
  scope: string;
  /** The simulated clock's start. */
  now: Date;
  keep: boolean;
  out: (text: string) => void;
  /**
   * Test-only: before this phase's checks, the rehearsed scope's bundle is replaced by a stranger's (the drill must
   * then fail).
   */
  tamper?: string;
}

/** A phase whose checklist differs from its expectation: the rehearsal stops and reports. */
export class PhaseFailed extends Error {}

export class Rehearsal {
  readonly work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-drill-'));
  readonly results: PhaseResult[] = [];
  readonly shape: MeshShape;
  mesh!: ScratchMesh;
  private stranger!: ScratchMesh;
  private fixed: { role: Role; label: string; scope: ScopeDef; service: string; key: string; chain: string }[] = [];
  /** The hosts of the matrix: scope and service. */
  private members: [ScopeDef, string][] = [];

  constructor(
    real: MeshShape,
    readonly opts: RehearsalOptions,
  ) {
    this.shape = rehearsalShape(real, opts.scope);
  }

  log = (line: string): void => this.opts.out(`   ${line}\n`);
  step = (title: string): void => this.opts.out(`\n== ${title}\n`);

  private scopeDef(name: string): ScopeDef {
    return this.shape.scopes.find((s) => s.name === name)!;
  }

  /**
   * The longest leaf lifetime of the mesh: the set-up happens that long ago, so its leaves are expired by the start.
   */
  private longestLeaf(): number {
    return Math.max(
      this.shape.leafTtl,
      ...this.shape.scopes.flatMap((s) => s.services.map((v) => v.ttl ?? this.shape.leafTtl)),
    );
  }

  /**
   * Stands the scratch mesh up: ceremony and first renew long enough ago that
   * those leaves are expired now, a renew now, one leaf revoked, and a
   * stranger mesh with the very same names.
   */
  async setUp(): Promise<void> {
    const { scope, now } = this.opts;
    const past = new Date(now.getTime() - this.longestLeaf() - DAY);
    this.opts.out(`trellis-drill: rehearsing on a scratch copy of ${this.shape.mesh}'s shape in ${this.work}\n`);
    const scopes = this.shape.scopes.map(
      (s) => `${s.name} (${s.services.length} service${s.services.length === 1 ? '' : 's'})`,
    );
    this.opts.out(`   scopes: ${scopes.join(', ')}; throwaway root and CI identities\n`);
    if (this.shape.added.length)
      this.opts.out(
        `   added for the checklist (the mesh has too few regions to refuse one): ${this.shape.added.join(', ')}\n`,
      );
    this.step(
      `set-up, ${rfc3339(past)} → ${rfc3339(now)}: init, the ceremony, renew; later renew again and revoke one leaf`,
    );
    this.mesh = await ScratchMesh.create(path.join(this.work, 'mesh'), 'mesh', this.shape, past, this.log);
    await this.mesh.root(['intermediate', '--pending', '--now', rfc3339(past)], { quiet: true });
    const expiredOut = path.join(this.work, 'expired-out');
    await this.mesh.ci(['renew', '--now', rfc3339(past), '--out', expiredOut], { quiet: true });
    await this.mesh.ci(['renew', '--now', rfc3339(now)], { quiet: true });

    const target = this.scopeDef(scope);
    const mine = target.services.slice(0, SERVICES_PER_SCOPE).map((s) => s.name);
    const global = scope === GLOBAL_SCOPE ? undefined : this.scopeDef(GLOBAL_SCOPE);
    const regions = this.shape.scopes
      .filter((s) => s.kind === 'region' && s.name !== scope && s.services.length)
      .slice(0, scope === GLOBAL_SCOPE ? 2 : 1);
    this.members = [
      ...mine.map((m): [ScopeDef, string] => [target, m]),
      ...(global?.services.length ? [[global, global.services[0]!.name] as [ScopeDef, string]] : []),
      ...regions.map((r): [ScopeDef, string] => [r, r.services[0]!.name]),
    ];
    const leafOf = (dir: string, service: string) => ({
      key: fs.readFileSync(path.join(dir, scope, service, 'key.pem'), 'utf8'),
      chain: fs.readFileSync(path.join(dir, scope, service, 'chain.pem'), 'utf8'),
    });
    const revokedService = mine[mine.length - 1]!;
    const revoked = leafOf(path.join(this.mesh.store, '.trellis/out'), revokedService);
    await this.mesh.ci(['revoke', `${scope}/${revokedService}`, '--reason', 'keyCompromise', '--now', rfc3339(now)], {
      quiet: true,
    });
    // The stranger's leaves live long, so at every phase its client is unknown rather than expired.
    const strangerShape = { ...this.shape, defaults: undefined };
    const longLived = { ...target, services: target.services.map((v) => ({ ...v, ttl: STRANGER_LEAF_TTL })) };
    this.stranger = await ScratchMesh.create(
      path.join(this.work, 'stranger'),
      'stranger',
      strangerShape,
      new Date(now.getTime() - HOUR),
      this.log,
      [longLived],
    );
    await this.stranger.root(['intermediate', '--pending', '--now', rfc3339(new Date(now.getTime() - HOUR))], {
      quiet: true,
    });
    await this.stranger.ci(['renew', '--now', rfc3339(new Date(now.getTime() - HOUR))], { quiet: true });
    this.fixed = [
      { role: 'unknown-ca', label: 'unknown CA', scope: target, service: mine[0]!, key: '', chain: '' },
      {
        role: 'expired',
        label: `expired (${scope}/${mine[0]})`,
        scope: target,
        service: mine[0]!,
        ...leafOf(expiredOut, mine[0]!),
      },
      {
        role: 'revoked',
        label: `revoked (${scope}/${revokedService})`,
        scope: target,
        service: revokedService,
        ...revoked,
      },
    ];
    this.log(
      `${this.members.map(([s, v]) => `${s.name}/${v}`).join(', ')} minted; ${scope}/${revokedService}'s first ` +
        `leaf revoked; a stranger mesh minted with the same names`,
    );
  }

  /**
   * What a deploy at this instant would put on a host: the newest leaf, its scope's committed bundle, the CRLs its TLS
   * stack needs.
   */
  hostsNow(): Host[] {
    const mesh = loadMesh(new Store(this.mesh.store));
    return this.members.map(([s, service]) => {
      const f = (file: string) =>
        fs.readFileSync(path.join(this.mesh.store, '.trellis/out', s.name, service, file), 'utf8');
      const crl = edgeCrl(mesh, s.name);
      return {
        name: `${s.name}/${service}`,
        dns: `${service}.${s.name}.${this.shape.trustDomain}`,
        scope: s.name,
        kind: s.kind,
        service,
        role: 'service',
        key: f('key.pem'),
        chain: f('chain.pem'),
        trust: this.mesh.file(`bundles/${s.name}/trust.openssl.pem`),
        ...(crl ? { crl } : {}),
      };
    });
  }

  /**
   * The rehearsed scope's services as they are deployed now, kept for a later phase (a host a deploy behind, or one
   * whose key was burned).
   */
  snapshot(label: string, role: Role = 'behind'): Host[] {
    return this.hostsNow()
      .filter((h) => h.scope === this.opts.scope)
      .slice(0, 1)
      .map((h) => ({ ...h, name: `${h.name} (${label})`, role }));
  }

  /** Ordinary CI: renew at `at`. */
  async renew(at: Date, quiet = false): Promise<void> {
    await this.mesh.ci(['renew', '--now', rfc3339(at)], { quiet });
  }

  /** The next gate of the rehearsed scope, from its state file. */
  gate(): Date {
    const state = loadMesh(new Store(this.mesh.store)).material.get(this.opts.scope)!.state!;
    const g = nextGate(state);
    if (!g) throw new Error(`${this.opts.scope} has no gate ahead (phase ${state.phase})`);
    return new Date(g.at);
  }

  /**
   * The checklist at `at`: every host against every host, then the unknown-CA,
   * expired and revoked clients (and `extra`) against every host; verify as of
   * `at`; and `more` checks of the phase.
   */
  async check(
    phase: string,
    title: string,
    at: Date,
    o: { extra?: Host[]; refused?: string; more?: PhaseResult['checks'] } = {},
  ): Promise<void> {
    if (this.opts.tamper === phase) {
      const f = `bundles/${this.opts.scope}/trust.openssl.pem`;
      fs.writeFileSync(path.join(this.mesh.store, f), this.stranger.file(f));
      this.log(`(test-only fault: ${f} replaced by a stranger's)`);
    }
    const hosts = this.hostsNow();
    const globalTrust = this.mesh.file(`bundles/${GLOBAL_SCOPE}/trust.openssl.pem`);
    const strangerOut = (file: string) =>
      fs.readFileSync(
        path.join(this.stranger.store, '.trellis/out', this.opts.scope, this.fixed[0]!.service, file),
        'utf8',
      );
    // The refused clients trust every scope (the global bundle), so each refusal is the server's judgement of the
    // client.
    const refusedClients: Host[] = this.fixed.map((f) => ({
      name: f.label,
      dns: '',
      scope: f.scope.name,
      kind: f.scope.kind,
      service: f.service,
      role: f.role,
      trust: globalTrust,
      key: f.role === 'unknown-ca' ? strangerOut('key.pem') : f.key,
      chain: f.role === 'unknown-ca' ? strangerOut('chain.pem') : f.chain,
    }));
    const clients = [...hosts, ...(o.extra ?? []), ...refusedClients];
    const pairs = clients.flatMap((client) => hosts.map((server) => ({ client, server })));
    const outcomes = await probeAt(at, pairs, this.work);
    const cells: Cell[] = pairs.map((p, i) => ({
      client: p.client.name,
      server: p.server.name,
      expected: expectHandshake(p.client, p.server, o.refused),
      outcome: outcomes[i]!,
    }));
    const verify = { name: 'trellis-ci verify (errors)', want: 'none', got: await verifyErrors(this.mesh, at) };
    const result: PhaseResult = { phase, title, at: rfc3339(at), cells, checks: [...(o.more ?? []), verify] };
    this.results.push(result);
    this.opts.out(`\n   checklist, ${title} (as of ${rfc3339(at)})\n`);
    this.opts.out(
      `${renderPhase(result)
        .trimEnd()
        .split('\n')
        .map((l) => `   ${l}`)
        .join('\n')}\n`,
    );
    // The real run would stop here too: later phases would build on a state that already fails its checklist.
    if (wrongCells(result)) throw new PhaseFailed(title);
  }

  /**
   * OpenSSL's verdict on one chain at `at`: ✓, or ✗ with its error number.
   * `want` is true, false (refused, any reason) or the error number a refusal must have (23: revoked).
   */
  async opensslVerify(name: string, want: boolean | number, at: Date, args: string[]): Promise<Check> {
    const r = await execa('openssl', ['verify', '-attime', String(Math.floor(at.getTime() / 1000)), ...args], {
      reject: false,
    });
    const code = /^error (\d+) /m.exec(String(r.stderr))?.[1];
    const got = r.exitCode === 0 ? '✓' : typeof want === 'number' ? `✗ error ${code ?? '?'}` : '✗';
    return { name, want: want === true ? '✓' : want === false ? '✗' : `✗ error ${want}`, got };
  }

  discard(): void {
    fs.rmSync(this.work, { recursive: true, force: true });
  }

  /** Prints the summary and returns the exit code: 0 when every cell of every phase matched its expectation. */
  finish(): number {
    const wrong = this.results.filter((r) => wrongCells(r));
    const total = this.results.reduce((n, r) => n + totalCells(r), 0);
    if (!this.opts.keep) fs.rmSync(this.work, { recursive: true, force: true });
    else this.opts.out(`\nkept ${this.work}\n`);
    if (wrong.length) {
      this.opts.out(
        `\nFAIL: ${wrong.map((r) => `${r.title}: ${wrongCells(r)} of ${totalCells(r)} cell(s) differ`).join('; ')}\n`,
      );
      return 1;
    }
    this.opts.out(`\nOK: all ${total} checks across ${this.results.length} phases match their expectation\n`);
    return 0;
  }
}

/** verify's errors on the scratch store as of `at`: 'none', or how many and the first. */
async function verifyErrors(m: ScratchMesh, at: Date): Promise<string> {
  const out = await m.ci(['verify', '--json', '--now', rfc3339(at)], { quiet: true, allowFail: true });
  try {
    const errors = (JSON.parse(out) as { findings: Finding[] }).findings.filter((f) => f.level === 'error');
    return errors.length ? `${errors.length}: ${errors[0]!.message.split('\n')[0]!.slice(0, 100)}` : 'none';
  } catch {
    return 'no report';
  }
}
