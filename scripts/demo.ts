/**
 * The trellis lifecycle on a scratch store, end to end with the real CLIs:
 * the offline ceremony, a region added by pull request, CI renew, verify,
 * then real mTLS handshakes between the minted leaves, printed as a matrix.
 * Exits non-zero if any cell differs from the regional boundary rule.
 *
 *   pnpm exec tsx scripts/demo.ts [--keep]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { handshakeMatrix, renderMatrix, type Party } from './lib/mtls.js';

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

interface Mesh {
  store: string;
  rootId: string;
  ciId: string;
}

async function standUp(name: string, at: string): Promise<Mesh> {
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

function party(m: Mesh, scope: string, service: string, label = `${scope}/${service}`, out = path.join(m.store, '.trellis/out')): Party {
  const f = (file: string) => fs.readFileSync(path.join(out, scope, service, file), 'utf8');
  return { name: label, dns: `${service}.${scope}.mesh.example`, key: f('key.pem'), chain: f('chain.pem'), trust: f('trust.openssl.pem') };
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
  const servers = [party(mesh, 'us-east-1', 'api'), party(mesh, 'eu-west-1', 'api'), party(mesh, 'global', 'control')];
  // The stranger and the expired leaf trust our bundles, so each refusal is the server's judgement of the client.
  const clients = [
    party(mesh, 'us-east-1', 'web'),
    ...servers,
    { ...party(stranger, 'us-east-1', 'api', 'unknown CA'), trust: servers[0]!.trust },
    party(mesh, 'us-east-1', 'api', 'expired (us-east-1)', expiredOut),
  ];
  const scopeOf = (p: Party) => p.name.split('/')[0]!;
  // The rule, written out: same region ✓; region → global ✓; global → region ✓; region A ↔ region B ✗; unknown CA ✗; expired ✗.
  const expected = (c: Party, s: Party) => {
    if (c.name.startsWith('unknown') || c.name.startsWith('expired')) return false;
    return scopeOf(c) === scopeOf(s) || scopeOf(c) === 'global' || scopeOf(s) === 'global';
  };
  const cells = await handshakeMatrix(clients, servers, expected);
  process.stdout.write(indent(renderMatrix(cells)));
  const wrong = cells.filter((c) => c.outcome.ok !== c.expected);
  for (const c of cells.filter((x) => !x.outcome.ok)) process.stdout.write(`   ${c.client} → ${c.server}: refused (${c.outcome.error})\n`);

  if (!keep) fs.rmSync(work, { recursive: true, force: true });
  else process.stdout.write(`\nkept ${work}\n`);
  if (wrong.length) {
    process.stdout.write(`\nFAIL: ${wrong.length} cell(s) differ from the rule: ${wrong.map((c) => `${c.client} → ${c.server}`).join(', ')}\n`);
    return 1;
  }
  process.stdout.write(`\nOK: all ${cells.length} handshakes match the regional boundary rule\n`);
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
  process.exit(1);
});
