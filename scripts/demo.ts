/**
 * The trellis lifecycle on a scratch store, end to end with the real CLIs:
 * the offline ceremony, a region added by pull request, CI renew, verify,
 * then real mTLS handshakes between the minted leaves, printed as a matrix;
 * then the three procedures (planned intermediate rotation, compromise
 * recovery, root rotation) rehearsed by trellis-drill on this mesh's shape,
 * a checklist matrix at each phase (handshakes under libfaketime at that instant).
 * Exits non-zero if any cell differs from its expectation.
 *
 *   pnpm exec tsx scripts/demo.ts [--keep]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { stringify } from 'yaml';
import {
  expectHandshake,
  httpsStatus,
  probeAt,
  renderMatrix,
  type Cell,
  type Host,
  type Party,
  type Role,
} from '../packages/drill/src/index.js';

const REPO = path.resolve(import.meta.dirname, '..');
const ROOT_BIN = path.join(REPO, 'packages/offline/dist/main.js');
const CI_BIN = path.join(REPO, 'packages/ci/dist/main.js');
const DRILL_BIN = path.join(REPO, 'packages/drill/dist/main.js');
const keep = process.argv.includes('--keep');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-demo-'));
const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');
const NOW = new Date();
const PAST = rfc3339(new Date(NOW.getTime() - 9 * 86_400_000));
const PR_TIME = rfc3339(new Date(NOW.getTime() - 8 * 86_400_000));

const step = (title: string) => process.stdout.write(`\n== ${title}\n`);
const base = { PATH: process.env.PATH, HOME: process.env.HOME };

/**
 * The air-gapped workstation: no CI variables, no CI identity. This sandbox has a network, so it opts in explicitly.
 */
async function offline(store: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await execa('node', [ROOT_BIN, '--store', store, ...args], {
    env: { ...base, TRELLIS_ALLOW_ONLINE: '1', ...env },
    extendEnv: false,
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`trellis-root ${args.join(' ')} failed (${r.exitCode}):\n${r.stderr}`);
  return r.stdout;
}

/** The CI runner: CI=true and the CI identity; never the root identity. */
async function ci(store: string, ciId: string, args: string[]): Promise<string> {
  const r = await execa('node', [CI_BIN, '--store', store, ...args], {
    env: { ...base, CI: 'true', TRELLIS_CI_IDENTITY_FILE: ciId },
    extendEnv: false,
    reject: false,
  });
  if (r.exitCode !== 0) throw new Error(`trellis-ci ${args.join(' ')} failed (${r.exitCode}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

const indent = (s: string) =>
  `${s
    .trimEnd()
    .split('\n')
    .map((l) => `   ${l}`)
    .join('\n')}\n`;

interface MeshDirs {
  store: string;
  rootId: string;
  ciId: string;
}

async function standUp(name: string, at: string): Promise<MeshDirs> {
  const dir = path.join(work, name);
  const m = {
    store: path.join(dir, 'store'),
    rootId: path.join(dir, 'root.identity'),
    ciId: path.join(dir, 'ci.identity'),
  };
  fs.mkdirSync(dir, { recursive: true });
  const id = await offline(m.store, [
    'init',
    '--mesh',
    name,
    '--trust-domain',
    'mesh.example',
    '--ci-identity-out',
    m.ciId,
    '--now',
    at,
    '--now-ahead',
  ]);
  fs.writeFileSync(m.rootId, id, { mode: 0o600 });
  const scope = (s: string, text: string) => fs.writeFileSync(path.join(m.store, 'scopes', `${s}.yaml`), text);
  scope('global', 'kind: global\nservices:\n  control: {}\n');
  scope(
    'us-east-1',
    'kind: region\nservices:\n  api: {}\n  web:\n    dns: [edge.us-east-1.mesh.example]\n    ttl: 72h\n',
  );
  return m;
}

/**
 * A service as a deploy would leave its host: the newest leaf from renew's
 * output and its scope's trust bundle as the store holds it now (a deploy
 * ships the current bundle to every host, re-minted or not).
 */
function party(
  m: MeshDirs,
  scope: string,
  service: string,
  label = `${scope}/${service}`,
  out = path.join(m.store, '.trellis/out'),
): Party {
  const f = (file: string) => fs.readFileSync(path.join(out, scope, service, file), 'utf8');
  const trust = fs.readFileSync(path.join(m.store, 'bundles', scope, 'trust.openssl.pem'), 'utf8');
  return { name: label, dns: `${service}.${scope}.mesh.example`, key: f('key.pem'), chain: f('chain.pem'), trust };
}

async function main(): Promise<number> {
  process.stdout.write(`trellis demo in ${work} (now ${rfc3339(NOW)})\n`);

  step(`offline, ${PAST}: trellis-root init, then the first ceremony (global, us-east-1)`);
  const mesh = await standUp('demo', PAST);
  process.stdout.write(
    indent(
      await offline(mesh.store, ['intermediate', '--pending', '--now', PAST, '--now-ahead'], {
        TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId,
      }),
    ),
  );
  const expiredOut = path.join(work, 'expired-out');
  step(`CI, ${PAST}: trellis-ci renew (these leaves are long expired by now)`);
  process.stdout.write(
    indent(await ci(mesh.store, mesh.ciId, ['renew', '--now', PAST, '--now-ahead', '--out', expiredOut])),
  );

  step(
    `${PR_TIME}: a pull request adds scopes/eu-west-1.yaml (trellis-ci scope add); CI verify reports it ` +
      `pending the ceremony, not broken`,
  );
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['scope', 'add', 'eu-west-1', '--service', 'api'])));
  process.stdout.write(
    indent(
      (await ci(mesh.store, mesh.ciId, ['verify', '--now', PR_TIME, '--now-ahead']))
        .split('\n')
        .filter((l) => /pending|error/.test(l))
        .join('\n'),
    ),
  );
  const comment = await ci(mesh.store, mesh.ciId, ['verify', '--format', 'markdown', '--now', PR_TIME, '--now-ahead']);
  process.stdout.write(
    `   the pull request's comment (verify --format markdown), what the ceremony will ` +
      `sign:\n${indent(comment.slice(comment.indexOf('#### eu-west-1'), comment.indexOf('\n\n|')))}`,
  );

  step('now, offline: the custodian runs trellis-root intermediate --pending and commits');
  process.stdout.write(
    indent(await offline(mesh.store, ['intermediate', '--pending'], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })),
  );

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

  step("real mTLS handshakes on 127.0.0.1 (Node TLS; each side trusts only its scope's trust.openssl.pem)");
  const servers = () => [
    party(mesh, 'us-east-1', 'api'),
    party(mesh, 'eu-west-1', 'api'),
    party(mesh, 'global', 'control'),
  ];
  // The stranger and the expired leaf trust our bundles, so each refusal is the server's judgement of the client.
  const first = servers();
  const results: Matrix[] = [];
  results.push(
    await matrix(
      'the regional boundary',
      NOW,
      [
        party(mesh, 'us-east-1', 'web'),
        ...first,
        { ...party(stranger, 'us-east-1', 'api', 'unknown CA'), trust: first[0]!.trust },
        party(mesh, 'us-east-1', 'api', 'expired (us-east-1)', expiredOut),
      ],
      first,
    ),
  );

  // ── Delivery: deploy to dir targets and run the matrix through real nginx, where it is installed.
  results.push(...(await throughNginx(mesh, stranger, expiredOut)));

  // ── The three procedures, rehearsed by trellis-drill on a scratch copy of this mesh's shape (its own throwaway keys,
  // a simulated clock).
  results.push(
    await drill(
      mesh,
      ['rotate-intermediate', 'us-east-1'],
      'procedure 1: planned rotation of the us-east-1 intermediate (offline: begin; CI: publish → switch → retire)',
    ),
  );
  results.push(
    await drill(
      mesh,
      ['recover', 'us-east-1'],
      'procedure 2: the us-east-1 intermediate is compromised: trellis-root recover, then renew',
    ),
  );
  results.push(
    await drill(mesh, ['rotate-root', 'us-east-1'], 'procedure 3: root rotation (offline: begin, overlap, finalize)'),
  );

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
  const probes: Record<string, { address: string; spiffe: string }> = {};
  for (const [scope, service] of [
    ['us-east-1', 'api'],
    ['global', 'control'],
  ] as const) {
    const release = path.join(work, 'hosts', `${scope}-${service}`);
    const prefix = path.join(work, `nginx-${scope}-${service}`);
    fs.mkdirSync(path.join(prefix, 'logs'), { recursive: true });
    const base = `nginx -p ${prefix} -c ${prefix}/nginx.conf`;
    const file = path.join(mesh.store, 'scopes', `${scope}.yaml`);
    // The scope file (a pull request's to edit) only names the reload command; the custodian allows it below.
    fs.writeFileSync(
      file,
      fs
        .readFileSync(file, 'utf8')
        .replace(
          `  ${service}: {}`,
          `  ${service}:\n    deploy:\n      - type: dir\n        path: ${release}\n        reload: ` +
            `nginx-${scope}-${service}\n        check: nginx-${scope}-${service}`,
        ),
    );
    reloads[`nginx-${scope}-${service}`] = `${base} -s reload 2>/dev/null || ${base}`;
    // The endpoint deploy --canary may connect to, and the SPIFFE ID its leaf carries: the custodian's to allow.
    probes[`nginx-${scope}-${service}`] = {
      address: `127.0.0.1:${port}`,
      spiffe: `spiffe://${scope}.mesh.example/${service}`,
    };
    const directives = (
      await ci(mesh.store, mesh.ciId, ['bundle', scope, '--format', 'nginx', '--release-dir', release])
    )
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    fs.writeFileSync(
      path.join(prefix, 'nginx.conf'),
      `pid ${prefix}/nginx.pid;\nerror_log ${prefix}/logs/error.log;\nevents {}\nhttp { access_log off; server ` +
        `{ listen 127.0.0.1:${port} ssl;\n${directives.join('\n')}\nlocation / { return 200 "ok"; } } }\n`,
    );
    served.push({ scope, service, port: port++, prefix });
  }
  // The custodian's part: what deploy may run and where it may write, in trellis.yaml, confirmed offline with the root
  // key.
  fs.appendFileSync(
    path.join(mesh.store, 'trellis.yaml'),
    stringify({ deploy: { reload: reloads, dir: { paths: [path.join(work, 'hosts')] }, probe: probes } }),
  );
  process.stdout.write(indent(await offline(mesh.store, ['confirm'], { TRELLIS_ROOT_IDENTITY_FILE: mesh.rootId })));
  process.stdout.write(indent(await ci(mesh.store, mesh.ciId, ['deploy', '--canary', '1'])));
  await new Promise((r) => setTimeout(r, 300));
  const client = (
    m: MeshDirs,
    scope: string,
    service: string,
    label: string,
    out = path.join(m.store, '.trellis/out'),
  ) => {
    const f = (x: string) => fs.readFileSync(path.join(out, scope, service, x), 'utf8');
    return {
      name: label,
      key: f('key.pem'),
      chain: f('chain.pem'),
      ca: fs.readFileSync(path.join(mesh.store, 'bundles/global/trust.openssl.pem'), 'utf8'),
    };
  };
  const clients = [
    client(mesh, 'us-east-1', 'web', 'us-east-1/web'),
    client(mesh, 'eu-west-1', 'api', 'eu-west-1/api'),
    client(mesh, 'global', 'control', 'global/control'),
    client(stranger, 'us-east-1', 'api', 'unknown CA'),
    client(mesh, 'us-east-1', 'api', 'expired (us-east-1)', expiredOut),
  ];
  const cells: Cell[] = [];
  for (const c of clients) {
    for (const s of served) {
      const status = await httpsStatus(s.port, `${s.service}.${s.scope}.mesh.example`, c);
      cells.push({
        client: c.name,
        server: `nginx ${s.scope}/${s.service}`,
        expected: boundary(
          { ...c, dns: '', trust: '' },
          { name: `${s.scope}/${s.service}`, dns: '', key: '', chain: '', trust: '' },
        ),
        outcome: { ok: status === 200, error: String(status) },
      });
    }
  }
  for (const s of served)
    await execa('nginx', ['-p', s.prefix, '-c', `${s.prefix}/nginx.conf`, '-s', 'stop'], { reject: false });
  process.stdout.write(`\n   HTTPS through nginx (200 = ✓; nginx answers 400 to a client it refuses)\n`);
  process.stdout.write(indent(renderMatrix(cells)));
  return [
    {
      title: 'delivery through nginx',
      wrong: cells.filter((c) => c.outcome.ok !== c.expected).length,
      total: cells.length,
    },
  ];
}

interface Matrix {
  title: string;
  wrong: number;
  total: number;
}

/**
 * One runbook through trellis-drill, as an operator would rehearse it before
 * the real run: its checklist matrices print as it goes; its summary line is
 * the count. Run in a clean environment, since the drill refuses any real identity.
 */
async function drill(m: MeshDirs, args: string[], title: string): Promise<Matrix> {
  step(`${title}\n   $ trellis-drill ${args.join(' ')} --store <this mesh>`);
  const r = await execa('node', [DRILL_BIN, ...args, '--store', m.store], {
    env: base,
    extendEnv: false,
    reject: false,
  });
  process.stdout.write(indent(String(r.stdout)));
  const summary = /^OK: all (\d+) checks across (\d+) phases/m.exec(String(r.stdout));
  if (r.exitCode !== 0 || !summary) {
    process.stdout.write(indent(String(r.stderr)));
    return { title: `trellis-drill ${args.join(' ')}`, wrong: 1, total: 1 };
  }
  return { title: `trellis-drill ${args.join(' ')}`, wrong: 0, total: Number(summary[1]) };
}

/**
 * The matrix's expectation: the drill's checklist rule (same scope ✓, either side global ✓, two regions ✗; refused
 * clients ✗).
 */
function boundary(c: Party, s: Party): boolean {
  return expectHandshake(host(c), host(s));
}

const host = (p: Party): Host => {
  const scope = p.name.split('/')[0]!;
  const role: Role = /unknown/.test(p.name) ? 'unknown-ca' : /expired/.test(p.name) ? 'expired' : 'service';
  return { ...p, scope, kind: scope === 'global' ? 'global' : 'region', service: p.name.split('/')[1] ?? '', role };
};

/** Runs a handshake matrix as of `when` (the drill's probe, under libfaketime) and prints it. */
async function matrix(title: string, when: Date, clients: Party[], servers: Party[]): Promise<Matrix> {
  const pairs = clients.flatMap((client) => servers.map((server) => ({ client, server })));
  const outcomes = await probeAt(when, pairs, work);
  const cells: Cell[] = pairs.map((p, i) => ({
    client: p.client.name,
    server: p.server.name,
    expected: boundary(p.client, p.server),
    outcome: outcomes[i]!,
  }));
  process.stdout.write(`\n   ${title} (as of ${rfc3339(when)})\n`);
  process.stdout.write(indent(renderMatrix(cells)));
  return { title, wrong: cells.filter((c) => c.outcome.ok !== c.expected).length, total: cells.length };
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`demo failed: ${(e as Error).message}\n`);
    process.exit(1);
  },
);
