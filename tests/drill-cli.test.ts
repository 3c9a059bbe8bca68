import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { baseEnv, nodeArgs, noteCliRun, type Env, type Run, DRILL_BIN } from './helpers/cli.js';
import { hashTree } from './helpers/store-hash.js';
import { DAY, HOUR, RUN_NOW, at } from './helpers/clock.js';

const NOW = at(RUN_NOW);

async function drill(args: string[], env: Env = {}): Promise<Run> {
  const r = await execa('node', nodeArgs(DRILL_BIN, args), {
    env: baseEnv(env) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
  });
  noteCliRun(DRILL_BIN, r);
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The checklist matrix printed for the phase whose title starts with `title`: row → column → ✓ or ✗. */
function matrixOf(stdout: string, title: string): Map<string, Map<string, string>> {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.trim().startsWith(`checklist, ${title}`));
  expect(start, `no checklist for ${title}`).toBeGreaterThan(-1);
  const header = lines[start + 1]!;
  const cols = header
    .trim()
    .split(/\s{2,}/)
    .slice(1)
    .map((name) => ({ name, at: header.indexOf(name) }));
  const out = new Map<string, Map<string, string>>();
  for (const line of lines.slice(start + 2)) {
    if (!line.trim() || !/[✓✗]/.test(line.slice(cols[0]!.at, cols[0]!.at + 1))) break;
    out.set(line.slice(0, cols[0]!.at).trim(), new Map(cols.map((c) => [c.name, line.slice(c.at, c.at + 1)])));
  }
  return out;
}

const SERVERS = ['us-east-1/api', 'us-east-1/web', 'global/control', 'eu-west-1/api'];

/** The checklist a region's rehearsal must show at a steady phase. */
function expectSteadyChecklist(m: Map<string, Map<string, string>>): void {
  expect([...m.get('us-east-1/api')!.values()]).toEqual(['✓', '✓', '✓', '✗']);
  expect([...m.get('global/control')!.values()]).toEqual(['✓', '✓', '✓', '✓']);
  expect([...m.get('eu-west-1/api')!.values()]).toEqual(['✗', '✗', '✓', '✓']); // other region refused, global accepted
  for (const refused of ['unknown CA', 'expired (us-east-1/api)', 'revoked (us-east-1/web)'])
    expect([...m.get(refused)!.values()]).toEqual(['✗', '✗', '✗', '✗']);
  expect([...m.get('us-east-1/api')!.keys()]).toEqual(SERVERS);
}

describe('trellis-drill', () => {
  let mesh: FakeMesh;
  // The real store only lends its shape: no intermediate, no leaf, no identity of it is used.
  beforeAll(async () => {
    mesh = await FakeMesh.create({
      scopes: { global: ['control'], 'us-east-1': ['api', 'web'], 'eu-west-1': ['api'] },
      intermediates: false,
    });
  });

  it.concurrent('rotate-intermediate: publish, switch and retire each pass the checklist, a host a deploy behind included', async () => {
    const before = hashTree(mesh.dir);
    const r = await drill(['rotate-intermediate', 'us-east-1', '--store', mesh.dir, '--now', NOW, '--now-ahead']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('UNEXPECTED');
    for (const phase of ['before', 'publish', 'switch', 'retire']) expectSteadyChecklist(matrixOf(r.stdout, phase));
    for (const phase of ['publish', 'switch', 'retire'])
      expect([...matrixOf(r.stdout, phase).get('us-east-1/api (a deploy behind)')!.values()]).toEqual([
        '✓',
        '✓',
        '✓',
        '✗',
      ]);
    // The gates come from the scratch store's own state: publish at +1h, switch after the 24h propagation, retire a
    // leaf lifetime (7d) later.
    expect(r.stdout).toContain(`== switch, ${at(RUN_NOW, DAY + HOUR)}`);
    expect(r.stdout).toContain(`== retire, ${at(RUN_NOW, 8 * DAY + HOUR)}`);
    expect(r.stdout).toMatch(/the old intermediate's key is deleted\s+yes/);
    // 4 phases × 7 rows × 4 servers, the behind row in 3 phases, verify in each phase, the key check.
    const total = 4 * 7 * 4 + 3 * 4 + 4 + 1;
    expect(r.stdout).toContain(`OK: all ${total} checks across 4 phases match their expectation`);
    expect(hashTree(mesh.dir)).toEqual(before); // the real store is only read
  }, 180_000);

  it.concurrent("recover: the burned key's leaves are refused at once (and its intermediate is revoked, error 23), then served again after renew", async () => {
    const r = await drill(['recover', 'us-east-1', '--store', mesh.dir, '--now', NOW, '--now-ahead']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const burned = matrixOf(r.stdout, 'recovered');
    for (const row of ['us-east-1/api', 'us-east-1/web'])
      expect([...burned.get(row)!.values()]).toEqual(['✗', '✗', '✗', '✗']);
    expect([...burned.get('global/control')!.values()]).toEqual(['✗', '✗', '✓', '✓']);
    expect(r.stdout).toMatch(/the burned intermediate against the root CRL \(openssl -crl_check\)\s+✗ error 23\n/);
    expectSteadyChecklist(matrixOf(r.stdout, 'after renew'));
    expect(r.stdout).toMatch(/OK: all \d+ checks across 3 phases/);
  }, 180_000);

  it.concurrent('rotate-root: the overlap keeps every handshake, the same leaf verifies under old and new root and crossed pairings fail', async () => {
    const r = await drill(['rotate-root', '--store', mesh.dir, '--now', NOW, '--now-ahead']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Without a scope, the checklist looks through the first region (eu-west-1 here).
    const overlap = matrixOf(r.stdout, 'overlap');
    expect([...overlap.get('eu-west-1/api')!.values()]).toEqual(['✓', '✓', '✗']);
    expect([...overlap.get('us-east-1/api')!.values()]).toEqual(['✗', '✓', '✓']);
    expect(r.stdout).toMatch(/under old root, old-root intermediate\s+✓\n/);
    expect(r.stdout).toMatch(/under new root, re-signed intermediate\s+✓\n/);
    expect(r.stdout).toMatch(/new root, old-root intermediate \(crossed\)\s*✗\n/);
    expect(r.stdout).toMatch(/roots\.pem holds one root\s+1\n/);
    expect(r.stdout).toMatch(/OK: all \d+ checks across 3 phases/);
  }, 180_000);

  it.concurrent('a drill whose handshakes go wrong fails: a tampered scratch bundle makes its cells UNEXPECTED, stops the drill and exits 1', async () => {
    const r = await drill(['rotate-intermediate', 'us-east-1', '--store', mesh.dir, '--now', NOW, '--now-ahead'], {
      TRELLIS_DRILL_TAMPER: 'publish',
    });
    expect(r.code).toBe(1);
    const m = matrixOf(r.stdout, 'publish');
    // A valid pair refused: both trust a stranger's intermediate now.
    expect(m.get('us-east-1/web')!.get('us-east-1/api')).toBe('✗');
    expect(r.stdout).toMatch(/us-east-1\/web → us-east-1\/api: (client|server): /);
    // verify sees the tampered bundle too.
    expect(r.stdout).toMatch(/trellis-ci verify \(errors\)\s+1: .*UNEXPECTED \(want none\)/);
    expect(r.stdout).toMatch(
      /^FAIL: publish: bundles trust \{old, new\}, signing on old: \d+ of \d+ cell\(s\) differ$/m,
    );
    expect(r.stdout).toContain('stopped after publish');
    expect(r.stdout).not.toContain('checklist, switch');
    // The phase before was fine.
    expect(matrixOf(r.stdout, 'before').get('us-east-1/web')!.get('us-east-1/api')).toBe('✓');
  }, 180_000);

  it.each([
    ['TRELLIS_ROOT_IDENTITY_FILE', '/media/offline/root.identity'],
    ['TRELLIS_ROOT_IDENTITY', 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ'],
    ['TRELLIS_CI_IDENTITY', 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ'],
    ['TRELLIS_CI_IDENTITY_FILE', '/run/secrets/ci.identity'],
    ['TRELLIS_AGENT_IDENTITY_FILE', '/etc/trellis/agent.identity'],
    ['TRELLIS_BREAKGLASS_IDENTITY_FILE', '/media/oncall/breakglass.identity'],
  ])('refuses to run (exit 3) with %s set, before reading anything', async (name, value) => {
    const r = await drill(
      ['rotate-intermediate', 'us-east-1', '--store', '/nonexistent', '--now', NOW, '--now-ahead'],
      { [name]: value },
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`${name} is set: a drill runs on throwaway identities only`);
    expect(r.stderr).not.toContain('AGE-SECRET-KEY');
    expect(r.stdout).toBe('');
  });

  it('an unknown scope is bad input (exit 2), naming the scope file', async () => {
    const r = await drill(['recover', 'ap-south-1', '--store', mesh.dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('scopes/ap-south-1.yaml: no scope ap-south-1 in this store');
  });
});
