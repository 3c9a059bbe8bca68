/**
 * The trellis lifecycle on a scratch store, end to end with the real CLIs:
 * the offline ceremony, a region added by pull request, CI renew, verify,
 * then real mTLS handshakes between the minted leaves, printed as a matrix;
 * then the three procedures (planned intermediate rotation, compromise
 * recovery, root rotation) on a simulated clock, a matrix at each phase
 * (handshakes run under libfaketime at that instant).
 * Exits non-zero if any cell differs from its expectation.
 *
 *   pnpm exec tsx scripts/demo.ts [--keep]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import { httpsStatus, renderMatrix, type Cell, type Party } from './lib/mtls.js';

const REPO = path.resolve(import.meta.dirname, '..');
const ROOT_BIN = path.join(REPO, 'packages/offline/dist/main.js');
const CI_BIN = path.join(REPO, 'packages/ci/dist/main.js');
const keep = process.argv.includes('--keep');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-demo-'));
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');
const NOW = new Date();
const PAST = rfc3339(new Date(NOW.getTime() - 9 * 86_400_000));
const PR_TIME = rfc3339(new Date(NOW.getTime() - 8 * 86_400_000));

const step = (title: string) => process.stdout.write(`\n== ${title}\n`);
const base = { PATH: process.env.PATH, HOME: process.env.HOME };

/** The air-gapped workstation: no CI variables, no CI identity. This sandbox has a network, so it opts in explicitly. */
async function offline(store: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await execa('node', [ROOT_BIN, '--store', store, ...args], { env: { ...base, TRELLIS_ALLOW_ONLINE: '1', ...env }, extendEnv: false, reject: false });
  if (r.exitCode !== 0) throw new Error(`trellis-root ${args.join(' ')} failed (${r.exitCode}):\n${r.stderr}`);
  return r.stdout;
}

/** The CI runner: CI=true and the CI identity; never the root identity. */
async function ci(store: string, ciId: string, args: string[]): Promise<string> {
  const r = await execa('node', [CI_BIN, '--store', store, ...args], { env: { ...base, CI: 'true', TRELLIS_CI_IDENTITY_FILE: ciId }, extendEnv: false, reject: false });
  if (r.exitCode !== 0) throw new Error(`trellis-ci ${args.join(' ')} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const indent = (s: string) => s.trimEnd().split('\n').map((l) => `   ${l}`).join('\n') + '\n';

interface MeshDirs {
  store: string;
  rootId: string;
  ciId: string;
}

async function standUp(name: string, at: string): Promise<MeshDirs> {
  const dir = path.join(work, name);
  const m = { store: path.join(dir, 'store'), rootId: path.join(dir, 'root.identity'), ciId: path.join(dir, 'ci.identity') };
  fs.mkdirSync(dir, { recursive: true });
  const id = await offline(m.store, ['init', '--mesh', name, '--trust-domain', 'mesh.example', '--ci-identity-out', m.ciId, '--now', at]);
  fs.writeFileSync(m.rootId, id, { mode: 0o600 });
  const scope = (s: string, text: string) => fs.writeFileSync(path.join(m.store, 'scopes', `${s}.yaml`), text);
  scope('global', 'kind: global\nservices:\n  control: {}\n');
  scope('us-east-1', 'kind: region\nservices:\n  api: {}\n  web:\n    dns: [edge.us-east-1.mesh.example]\n    ttl: 72h\n');
  return m;
}

/**
 * A service as a deploy would leave its host: the newest leaf from renew's
 * output and its scope's trust bundle as the store holds it now (a deploy
 * ships the current bundle to every host, re-minted or not).
 */
function party(m: MeshDirs, scope: string, service: string, label = `${scope}/${service}`, out = path.join(m.store, '.trellis/out')): Party {
  const f = (file: string) => fs.readFileSync(path.join(out, scope, service, file), 'utf8');
  const trust = fs.readFileSync(path.join(m.store, 'bundles', scope, 'trust.openssl.pem'), 'utf8');
  return { name: label, dns: `${service}.${scope}.mesh.example`, key: f('key.pem'), chain: f('chain.pem'), trust };
}

async function main(): Promise<number> {
  process.stdout.write(`trellis demo in ${work} (now ${rfc3339(NOW)})\n`);

  step(`offline, ${PAST}: trellis-root init, then the first ceremony (global, us-east-1)`);
  const mesh = await standUp('demo', PAST);
  process.stdout.write(indent(await offline(mesh.store, ['intermediate', '--pending', '--now', PAST], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));
  const expiredOut = path.join(work, 'expired-out');
  step(`CI, ${PAST}: trellis-ci renew (these leaves are long expired by now)`);
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['renew', '--now', PAST, '--out', expiredOut])));

  step(`${PR_TIME}: a pull request adds scopes/eu-west-1.yaml; CI verify reports it pending the ceremony, not broken`);
  fs.writeFileSync(path.join(mesh.store, 'scopes/eu-west-1.yaml'), 'kind: region\nservices:\n  api: {}\n');
  process.stdout.write(indent((await ci(mesh.store, mesh.ciId, ['verify', '--now', PR_TIME])).split('\n').filter((l) => /pending|error/.test(l)).join('\n')));

  step('now, offline: the custodian runs trellis-root intermediate --pending and commits');
  process.stdout.write(indent(await offline(mesh.store, ['intermediate', '--pending'], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));

  step('CI: trellis-ci renew (expired leaves re-minted, the new region served)');
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['renew'])));
  step('CI: trellis-ci verify (with the CI identity: key custody proven)');
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['verify'])));
  step('trellis-ci status');
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['status'])));

  step('a stranger mesh with the very same names (unknown CA)');
  const stranger = await standUp('stranger', rfc3339(NOW));
  await offline(stranger.store, ['intermediate', '--pending'], { TRELLIS_ROOT_IDENTITY_FILE: stranger.rootId });
  await ci(stranger.store, stranger.ciId, ['renew']);
  process.stdout.write('   minted\n');

  step('real mTLS handshakes on 127.0.0.1 (Node TLS; each side trusts only its scope\'s trust.openssl.pem)');
  const servers = () => [party(mesh, 'us-east-1', 'api'), party(mesh, 'eu-west-1', 'api'), party(mesh, 'global', 'control')];
  // The stranger and the expired leaf trust our bundles, so each refusal is the server's judgement of the client.
  const first = servers();
  const results: Matrix[] = [];
  results.push(await matrix('the regional boundary', NOW, [
    party(mesh, 'us-east-1', 'web'), ...first,
    { ...party(stranger, 'us-east-1', 'api', 'unknown CA'), trust: first[0]!.trust },
    party(mesh, 'us-east-1', 'api', 'expired (us-east-1)', expiredOut),
  ], first));

  // ── Delivery: deploy to dir targets and run the matrix through real nginx, where it is installed.
  results.push(...(await throughNginx(mesh, stranger, expiredOut)));

  // ── Procedure 1: planned intermediate rotation, CI running the phases on a simulated clock.
  const at = (ms: number) => new Date(NOW.getTime() + ms);
  const H = 3_600_000;
  step('procedure 1: planned rotation of the us-east-1 intermediate (offline: begin; CI: publish → switch → retire)');
  process.stdout.write(indent(await offline(mesh.store, ['rotate', 'intermediate', 'us-east-1', '--now', rfc3339(at(H))], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));
  const behind = snapshot(mesh, 'us-east-1', 'api', 'us-east-1/api (a deploy behind)');
  results.push(await matrix('publish: bundles trust {old, new}, signing on old', at(H + 60_000), [behind, ...servers()], servers()));
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['renew', '--now', rfc3339(at(26 * H))])));
  results.push(await matrix('switch: signing on new, every leaf re-minted', at(26 * H + 60_000), [behind, ...servers()], servers()));
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['renew', '--now', rfc3339(at(26 * H + 7 * 24 * H))])));
  results.push(await matrix('retire: old intermediate out of the bundles, its key removed', at(26 * H + 7 * 24 * H + 60_000), servers(), servers()));

  // ── Procedure 2: compromise recovery.
  const T2 = at(26 * H + 7 * 24 * H + 2 * H);
  step('procedure 2: the us-east-1 intermediate is compromised: trellis-root recover');
  const compromised = snapshot(mesh, 'us-east-1', 'api', 'us-east-1/api (compromised key)');
  process.stdout.write(indent(await offline(mesh.store, ['recover', 'us-east-1', '--reason', 'keyCompromise', '--now', rfc3339(T2)], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));
  results.push(await matrix('after recover, before renew: leaves of the old key refused at once', new Date(T2.getTime() + 60_000), [{ ...compromised, trust: servers()[2]!.trust }], servers().slice(2), () => false));
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['renew', '--now', rfc3339(new Date(T2.getTime() + H))])));
  results.push(await matrix('after renew: every leaf of the scope re-minted', new Date(T2.getTime() + H + 60_000), servers(), servers()));
  const crlCheck = await execa('openssl', ['verify', '-crl_check', '-attime', String(Math.floor(T2.getTime() / 1000) + 3600), '-CAfile', path.join(mesh.store, 'bundles/root/roots.pem'), '-CRLfile', path.join(mesh.store, 'bundles/root/crl.pem'), compromised.intermediatePath!], { reject: false });
  process.stdout.write(`   openssl verify -crl_check on the old intermediate: ${crlCheck.stderr.split('\n').find((l) => /^error \d+/.test(l)) ?? 'accepted'}\n`);
  if (!/error 23 /.test(crlCheck.stderr)) results.push({ title: 'root CRL', wrong: 1, total: 1 });

  // ── Procedure 3: root rotation.
  const T3 = new Date(T2.getTime() + 3 * H);
  step('procedure 3: root rotation (offline: begin, overlap, finalize)');
  process.stdout.write(indent(await offline(mesh.store, ['rotate', 'root', '--now', rfc3339(T3)], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));
  results.push(await matrix('overlap: intermediates re-signed, keys kept, no leaf re-minted', new Date(T3.getTime() + 60_000), servers(), servers()));
  const leaf = path.join(mesh.store, '.trellis/out/us-east-1/api/cert.pem');
  const b = (f: string) => path.join(mesh.store, 'bundles', f);
  const chains: [string, string, string, boolean][] = [
    ['old root, old-root intermediate', b('root/root.previous.pem'), b('us-east-1/intermediate.old-root.pem'), true],
    ['new root, re-signed intermediate', b('root/root.pem'), b('us-east-1/intermediate.pem'), true],
    ['new root, old-root intermediate (crossed)', b('root/root.pem'), b('us-east-1/intermediate.old-root.pem'), false],
    ['old root, re-signed intermediate (crossed)', b('root/root.previous.pem'), b('us-east-1/intermediate.pem'), false],
  ];
  let chainWrong = 0;
  for (const [label, root, inter, want] of chains) {
    const r = await execa('openssl', ['verify', '-x509_strict', '-purpose', 'sslserver', '-attime', String(Math.floor(T3.getTime() / 1000) + 120), '-CAfile', root, '-untrusted', inter, leaf], { reject: false });
    const ok = r.exitCode === 0;
    if (ok !== want) chainWrong++;
    process.stdout.write(`   the same live leaf under ${label.padEnd(42)} ${ok ? '✓' : '✗'}${ok === want ? '' : ' UNEXPECTED'}\n`);
  }
  results.push({ title: 'root overlap chains (OpenSSL)', wrong: chainWrong, total: chains.length });
  process.stdout.write(indent(await offline(mesh.store, ['rotate', 'root', '--finalize', '--now', rfc3339(new Date(T3.getTime() + 24 * H))], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['renew', '--now', rfc3339(new Date(T3.getTime() + 24 * H))])));
  results.push(await matrix('after finalize: only the new root remains', new Date(T3.getTime() + 24 * H + 60_000), servers(), servers()));
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['verify', '--now', rfc3339(new Date(T3.getTime() + 24 * H + 60_000))])));

  if (!keep) fs.rmSync(work, { recursive: true, force: true });
  else process.stdout.write(`\nkept ${work}\n`);
  const wrong = results.filter((r) => r.wrong);
  const total = results.reduce((n, r) => n + r.total, 0);
  if (wrong.length) {
    process.stdout.write(`\nFAIL: ${wrong.map((r) => `${r.title}: ${r.wrong} cell(s) differ`).join('; ')}\n`);
    return 1;
  }
  process.stdout.write(`\nOK: all ${total} checks across ${results.length} matrices match their expectation\n`);
  return 0;
}

/**
 * Two services get a `dir` deploy target served by nginx, configured by what
 * `trellis-ci bundle --format nginx` prints; `trellis-ci deploy` installs and
 * (re)loads; then clients of every kind make HTTPS requests through nginx.
 */
async function throughNginx(mesh: MeshDirs, stranger: MeshDirs, expiredOut: string): Promise<Matrix[]> {
  if ((await execa('nginx', ['-v'], { reject: false })).exitCode !== 0) {
    process.stdout.write('\n== delivery through nginx: nginx is not installed here, skipped\n');
    return [];
  }
  step('delivery: trellis-ci deploy to dir targets, served by real nginx on 127.0.0.1');
  const served: { scope: string; service: string; port: number; prefix: string }[] = [];
  let port = 19443;
  const reloads: Record<string, string> = {};
  for (const [scope, service] of [['us-east-1', 'api'], ['global', 'control']] as const) {
    const release = path.join(work, 'hosts', `${scope}-${service}`);
    const prefix = path.join(work, `nginx-${scope}-${service}`);
    fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    const base = `nginx -p ${prefix} -c ${prefix}/nginx.conf`;
    const file = path.join(mesh.store, 'scopes', `${scope}.yaml`);
    // The scope file (a pull request's to edit) only names the reload command; the custodian allows it below.
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(`  ${service}: {}`, `  ${service}:\n    deploy:\n      - type: dir\n        path: ${release}\n        reload: nginx-${scope}-${service}\n        check: 127.0.0.1:${port}`));
    reloads[`nginx-${scope}-${service}`] = `${base} -s reload 2>/dev/null || ${base}`;
    const directives = (await ci(mesh.store, mesh.ciId, ['bundle', scope, '--format', 'nginx', '--release-dir', release])).split('\n').filter((l) => l && !l.startsWith('#'));
    fs.writeFileSync(path.join(prefix, 'nginx.conf'), `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:${port} ssl;\n${directives.join('\n')}\nlocation / { return 200 "ok"; } } }\n`);
    served.push({ scope, service, port: port++, prefix });
  }
  // The custodian's part: what deploy may run and where it may write, in trellis.yaml, confirmed offline with the root key.
  fs.appendFileSync(path.join(mesh.store, 'trellis.yaml'), stringify({ deploy: { reload: reloads, dir: { paths: [path.join(work, 'hosts')] } } }));
  process.stdout.write(indent(await offline(mesh.store, ['confirm'], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['deploy', '--canary', '1'])));
  await new Promise((r) => setTimeout(r, 300));
  const client = (m: MeshDirs, scope: string, service: string, label: string, out = path.join(m.store, '.trellis/out')) => {
    const f = (x: string) => fs.readFileSync(path.join(out, scope, service, x), 'utf8');
    return { name: label, key: f('key.pem'), chain: f('chain.pem'), ca: fs.readFileSync(path.join(mesh.store, 'bundles/global/trust.openssl.pem'), 'utf8') };
  };
  const clients = [
    client(mesh, 'us-east-1', 'web', 'us-east-1/web'), client(mesh, 'eu-west-1', 'api', 'eu-west-1/api'), client(mesh, 'global', 'control', 'global/control'),
    client(stranger, 'us-east-1', 'api', 'unknown CA'), client(mesh, 'us-east-1', 'api', 'expired (us-east-1)', expiredOut),
  ];
  const cells: Cell[] = [];
  for (const c of clients) {
    for (const s of served) {
      const status = await httpsStatus(s.port, `${s.service}.${s.scope}.mesh.example`, c);
      cells.push({ client: c.name, server: `nginx ${s.scope}/${s.service}`, expected: boundary({ ...c, dns: '', trust: '' }, { name: `${s.scope}/${s.service}`, dns: '', key: '', chain: '', trust: '' }), outcome: { ok: status === 200, error: String(status) } });
    }
  }
  for (const s of served) await execa('nginx', ['-p', s.prefix, '-c', `${s.prefix}/nginx.conf`, '-s', 'stop'], { reject: false });
  process.stdout.write(`\n   HTTPS through nginx (200 = ✓; nginx answers 400 to a client it refuses)\n`);
  process.stdout.write(indent(renderMatrix(cells)));
  return [{ title: 'delivery through nginx', wrong: cells.filter((c) => c.outcome.ok !== c.expected).length, total: cells.length }];
}

interface Matrix {
  title: string;
  wrong: number;
  total: number;
}

type Host = Party & { intermediatePath?: string };

/** A copy of a service's deployed files as they are now: what a host that has not redeployed still presents. */
function snapshot(m: MeshDirs, scope: string, service: string, label: string): Host {
  const dir = path.join(work, 'snapshots', `${Date.now()}-${scope}-${service}`);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(m.store, 'bundles', scope, 'intermediate.pem'), path.join(dir, 'intermediate.pem'));
  return { ...party(m, scope, service, label), intermediatePath: path.join(dir, 'intermediate.pem') };
}

/** The rule, written out: same region ✓; region → global ✓; global → region ✓; region A ↔ region B ✗; unknown CA ✗; expired ✗. */
function boundary(c: Party, s: Party): boolean {
  if (/unknown|expired|compromised/.test(c.name)) return false;
  const scopeOf = (p: Party) => p.name.split('/')[0]!;
  return scopeOf(c) === scopeOf(s) || scopeOf(c) === 'global' || scopeOf(s) === 'global';
}

/** Runs a handshake matrix as of `when` (under libfaketime when that is not now) and prints it. */
async function matrix(title: string, when: Date, clients: Party[], servers: Party[], expect = boundary): Promise<Matrix> {
  const pairs = clients.flatMap((client) => servers.map((server) => ({ client, server })));
  const file = path.join(work, `pairs-${Date.now()}.json`);
  fs.writeFileSync(file, JSON.stringify(pairs));
  const stamp = when.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '');
  const tsx = path.join(REPO, 'node_modules/.bin/tsx');
  const r = await execa('faketime', ['-f', `@${stamp}`, tsx, path.join(REPO, 'scripts/lib/probe.ts'), file], { env: { TZ: 'UTC' }, reject: false });
  if (r.exitCode !== 0) throw new Error(`probe failed: ${r.stderr}`);
  const outcomes = (JSON.parse(r.stdout) as { results: { ok: boolean; error?: string }[] }).results;
  const cells: Cell[] = pairs.map((p, i) => ({ client: p.client.name, server: p.server.name, expected: expect(p.client, p.server), outcome: outcomes[i]! }));
  process.stdout.write(`\n   ${title} (as of ${rfc3339(when)})\n`);
  process.stdout.write(indent(renderMatrix(cells)));
  return { title, wrong: cells.filter((c) => c.outcome.ok !== c.expected).length, total: cells.length };
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
  process.exit(1);
});
