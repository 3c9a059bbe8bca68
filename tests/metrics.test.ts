/**
 * `check --metrics` and `renew --metrics`: the node-exporter textfile format
 * judged by the real promtool, values cross-checked with OpenSSL, the atomic
 * write, and the example alert rules run by `promtool test rules` on the
 * series a real mesh wrote.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { FakeMesh } from './helpers/fake-mesh.js';
import { REPO, tool, trellisCi } from './helpers/cli.js';
import { RUN_HOUR } from './helpers/clock.js';
import { HOUR, at } from './helpers/drill.js';

const T0 = RUN_HOUR;
const T = new Date(T0.getTime() + HOUR); // the instant of the snapshot (see docs/alerts/trellis.rules.test.yml)
const RULES = path.join(REPO, 'docs/alerts/trellis.rules.yml');
const RULES_TEST = path.join(REPO, 'docs/alerts/trellis.rules.test.yml');

interface Sample {
  series: string;
  name: string;
  labels: string;
  value: number;
}

/** The samples of a textfile, as a Prometheus scrape reads them (no timestamps in ours). */
function samples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-z_]+)(\{.*\})? (\S+)$/.exec(l);
      if (!m) throw new Error(`not a sample line: ${l}`);
      return { series: `${m[1]}${m[2] ?? ''}`, name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) };
    });
}
const value = (text: string, series: string) => samples(text).find((s) => s.series === series)?.value;
const unix = (d: Date) => Math.floor(d.getTime() / 1000);

let m: FakeMesh;
let dir: string;
let checkFile: string;
let renewFile: string;
let renewAfterSuccess: string;
let renewFailure: { code: number; stderr: string };
let checkRun: { code: number; stdout: string };

beforeAll(async () => {
  m = await FakeMesh.create({
    scopes: { global: ['control'], 'us-east-1': ['api'] },
    now: at(T0),
    intermediates: false,
    defaults: { ttl: { intermediate: '100d' } },
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-metrics-'));
  checkFile = path.join(dir, 'trellis.prom');
  renewFile = path.join(dir, 'trellis_renew.prom');
  const ok = async (r: Promise<{ code: number; stderr: string }>) => {
    const x = await r;
    if (x.code !== 0) throw new Error(x.stderr);
  };
  await ok(m.root(['intermediate', '--pending', '--now', at(T0), '--now-ahead']));
  await ok(m.ci(['renew', '--now', at(T0), '--now-ahead', '--metrics', renewFile]));
  renewAfterSuccess = fs.readFileSync(renewFile, 'utf8');
  await ok(
    m.root(['rotate', 'intermediate', 'us-east-1', '--now', at(new Date(T0.getTime() + HOUR / 2)), '--now-ahead']),
  );
  m.writeScope('eu-west-1', ['api']);
  // A renew that must sign but has no CI identity: it fails, and says so in the file.
  renewFailure = await trellisCi([
    '--store',
    m.dir,
    'renew',
    '--force',
    '--now',
    at(T),
    '--now-ahead',
    '--metrics',
    renewFile,
  ]);
  checkRun = await trellisCi(['--store', m.dir, 'check', '--now', at(T), '--now-ahead', '--metrics', checkFile]);
});

describe('check --metrics', () => {
  it('writes a file promtool accepts, with HELP and TYPE for every family', async () => {
    // A pending ceremony, the incoming intermediate's missing anchor CRL.
    expect(checkRun.code, checkRun.stdout).toBe(1);
    const text = fs.readFileSync(checkFile, 'utf8');
    const r = await tool('promtool', ['check', 'metrics'], { input: text });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of new Set(samples(text).map((s) => s.name))) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} gauge`);
    }
    expect(fs.statSync(checkFile).mode & 0o777).toBe(0o644);
  });

  it('expiry timestamps per certificate are absolute and match OpenSSL', async () => {
    const text = fs.readFileSync(checkFile, 'utf8');
    const expiry = async (file: string) => {
      const r = await tool('openssl', ['x509', '-noout', '-enddate', '-serial', '-in', m.path(file)]);
      const serial = /serial=(\w+)/.exec(r.stdout)![1]!; // the label is the serial as OpenSSL prints it
      return { notAfter: unix(new Date(/notAfter=(.*)/.exec(r.stdout)![1]!)), serial };
    };
    // Each certificate's sample, by its labels.
    const notAfter = (labels: string) => value(text, `trellis_certificate_not_after_seconds{${labels}}`);
    const root = await expiry('bundles/root/root.pem');
    expect(notAfter(`tier="root",scope="",service="",role="active",serial="${root.serial}"`)).toBe(root.notAfter);
    const active = await expiry('bundles/us-east-1/intermediate.pem');
    expect(notAfter(`tier="intermediate",scope="us-east-1",service="",role="active",serial="${active.serial}"`)).toBe(
      active.notAfter,
    );
    const next = await expiry('bundles/us-east-1/intermediate.next.pem');
    expect(notAfter(`tier="intermediate",scope="us-east-1",service="",role="next",serial="${next.serial}"`)).toBe(
      next.notAfter,
    );
    const leaf = parse(m.read('bundles/us-east-1/leaves.yaml')).api;
    expect(
      notAfter(`tier="leaf",scope="us-east-1",service="api",role="current",serial="${leaf.serial.toUpperCase()}"`),
    ).toBe(unix(new Date(leaf.notAfter)));
    // Root, 3 intermediates, 2 leaves.
    expect(samples(text).filter((s) => s.name === 'trellis_certificate_not_after_seconds')).toHaveLength(6);
  });

  it('CRL nextUpdate matches OpenSSL; phases, the next gate and time-to-unsafe per scope', async () => {
    const text = fs.readFileSync(checkFile, 'utf8');
    const crl = await tool('openssl', ['crl', '-noout', '-nextupdate', '-in', m.path('bundles/root/crl.pem')]);
    const rootCrl = samples(text).find(
      (s) => s.name === 'trellis_crl_next_update_seconds' && s.labels.includes('kind="root"'),
    );
    expect(rootCrl?.value).toBe(unix(new Date(/nextUpdate=(.*)/.exec(crl.stdout)![1]!)));
    expect(value(text, 'trellis_rotation_phase{scope="us-east-1",phase="publish"}')).toBe(1);
    expect(value(text, 'trellis_rotation_phase{scope="us-east-1",phase="steady"}')).toBe(0);
    expect(value(text, 'trellis_rotation_phase{scope="eu-west-1",phase="pending"}')).toBe(1);
    const state = parse(m.read('bundles/us-east-1/state.yaml'));
    expect(value(text, 'trellis_rotation_next_gate_seconds{scope="us-east-1",gate="switch"}')).toBe(
      unix(new Date(state.rotation.switchAt)),
    );
    // The incoming intermediate signs after the switch: a 7d leaf is cut short from 7 days before it ends.
    const next = await tool('openssl', [
      'x509',
      '-noout',
      '-enddate',
      '-in',
      m.path('bundles/us-east-1/intermediate.next.pem'),
    ]);
    expect(value(text, 'trellis_scope_unsafe_at_seconds{scope="us-east-1"}')).toBe(
      unix(new Date(/notAfter=(.*)/.exec(next.stdout)![1]!)) - 7 * 86400,
    );
    expect(value(text, 'trellis_check_timestamp_seconds')).toBe(unix(T));
    expect(value(text, 'trellis_check_status')).toBe(1);
  });
});

describe('renew --metrics', () => {
  it('records a success: when, 1, and the leaves minted', async () => {
    expect(await tool('promtool', ['check', 'metrics'], { input: renewAfterSuccess })).toMatchObject({ code: 0 });
    expect(value(renewAfterSuccess, 'trellis_renew_last_run_timestamp_seconds')).toBe(unix(T0));
    expect(value(renewAfterSuccess, 'trellis_renew_success')).toBe(1);
    expect(value(renewAfterSuccess, 'trellis_renew_leaves_minted')).toBe(2);
    expect(value(renewAfterSuccess, 'trellis_renew_last_success_timestamp_seconds')).toBe(unix(T0));
  });

  it("records a failure with renew's own exit code kept, and carries the last success over", async () => {
    expect(renewFailure.code).toBe(3); // no CI identity: the contract's custody code, not changed by --metrics
    const text = fs.readFileSync(renewFile, 'utf8');
    expect((await tool('promtool', ['check', 'metrics'], { input: text })).code).toBe(0);
    expect(value(text, 'trellis_renew_last_run_timestamp_seconds')).toBe(unix(T));
    expect(value(text, 'trellis_renew_success')).toBe(0);
    expect(value(text, 'trellis_renew_leaves_minted')).toBe(0);
    expect(value(text, 'trellis_renew_last_success_timestamp_seconds')).toBe(unix(T0));
  });

  it('a dry run is not recorded', async () => {
    const f = path.join(dir, 'dry.prom');
    const r = await m.ci(['renew', '--dry-run', '--now', at(T), '--now-ahead', '--metrics', f]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(f)).toBe(false);
  });
});

describe('the metrics file is replaced atomically', () => {
  const OLD = '# the previous run\ntrellis_check_status 0\n';
  const fresh = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-textfile-'));
    fs.writeFileSync(path.join(d, 'trellis.prom'), OLD);
    return d;
  };
  const run = (file: string, env: Record<string, string> = {}) =>
    trellisCi(['--store', m.dir, 'check', '--now', at(T), '--now-ahead', '--metrics', file], { env });

  it('an unwritable directory: UNKNOWN naming the file, the old file intact, nothing left beside it', async () => {
    const d = fresh();
    const file = path.join(d, 'trellis.prom');
    // root ignores mode bits: an immutable directory refuses even root.
    const chmodded = () => {
      fs.chmodSync(d, 0o555);
      return true;
    };
    const locked = (await tool('chattr', ['+i', d])).code === 0 || (process.getuid?.() !== 0 && chmodded());
    expect(locked, 'chattr +i (as root) or a read-only directory').toBe(true);
    try {
      const r = await run(file);
      expect(r.code).toBe(3);
      expect(r.stdout.split('\n')[0]).toMatch(
        new RegExp(
          `^TRELLIS UNKNOWN - cannot write the metrics file ${file}: .*(permission denied|operation not ` +
            `permitted).*the previous file is left as it was \\(checks: WARNING - `,
        ),
      );
    } finally {
      await tool('chattr', ['-i', d]);
      fs.chmodSync(d, 0o755);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe(OLD);
    expect(fs.readdirSync(d)).toEqual(['trellis.prom']);
  });

  it('renew: a metrics file it cannot write after a committed run is exit 1 saying the store was committed', async () => {
    const d = fresh();
    expect((await tool('chattr', ['+i', d])).code, 'chattr +i').toBe(0);
    try {
      // On a copy: this renew commits (it signs the incoming intermediate's anchor CRL).
      const r = await m.clone().ci(['renew', '--now', at(T), '--now-ahead', '--metrics', path.join(d, 'trellis.prom')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          /renew completed \(0 leaves minted and committed\) but its metrics file .*trellis\.prom was not /.source +
            /written: .*(permission denied|operation not permitted)/.source,
        ),
      );
    } finally {
      await tool('chattr', ['-i', d]);
    }
    expect(fs.readFileSync(path.join(d, 'trellis.prom'), 'utf8')).toBe(OLD);
  });

  it('a check that cannot judge (UNKNOWN) leaves the previous file: an empty one would silence every expiry alert', async () => {
    const d = fresh();
    const broken = m.clone();
    broken.write('bundles/global/leaves.yaml', 'control: 42\n');
    const r = await trellisCi([
      '--store',
      broken.dir,
      'check',
      '--now',
      at(T),
      '--now-ahead',
      '--metrics',
      path.join(d, 'trellis.prom'),
    ]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^TRELLIS UNKNOWN - .*bundles\/global\/leaves\.yaml/);
    expect(fs.readFileSync(path.join(d, 'trellis.prom'), 'utf8')).toBe(OLD);
  });

  it('a failed rename (EIO) leaves the old file and no temporary file', async () => {
    const d = fresh();
    const r = await run(path.join(d, 'trellis.prom'), { TRELLIS_FAULT: 'rename:1:eio' });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^TRELLIS UNKNOWN - cannot write the metrics file .*input\/output error/);
    expect(fs.readFileSync(path.join(d, 'trellis.prom'), 'utf8')).toBe(OLD);
    expect(fs.readdirSync(d)).toEqual(['trellis.prom']);
  });

  it('killed mid-write: the old file is whole, and a leftover is not a *.prom the collector would read', async () => {
    const d = fresh();
    await run(path.join(d, 'trellis.prom'), { TRELLIS_FAULT: 'fsync:1' });
    expect(fs.readFileSync(path.join(d, 'trellis.prom'), 'utf8')).toBe(OLD);
    expect(fs.readdirSync(d).filter((f) => f.endsWith('.prom'))).toEqual(['trellis.prom']);
    // And a clean run replaces it whole.
    expect((await run(path.join(d, 'trellis.prom'))).code).toBe(1);
    expect(fs.readFileSync(path.join(d, 'trellis.prom'), 'utf8')).toBe(fs.readFileSync(checkFile, 'utf8'));
  });
});

describe('the example alert rules', () => {
  /**
   * The committed rules test, each group's input series taken from the files trellis wrote, every
   * *_seconds value shifted so the group's time 0 is the instant its name gives ("from T + Nh").
   */
  function rulesTest(transform: (s: Sample) => Sample = (s) => s, only?: number): string {
    const spec = parse(fs.readFileSync(RULES_TEST, 'utf8'));
    spec.rule_files = [RULES];
    const all = [...samples(fs.readFileSync(checkFile, 'utf8')), ...samples(fs.readFileSync(renewFile, 'utf8'))].map(
      transform,
    );
    for (const group of spec.tests as {
      name: string;
      input_series: unknown[];
      alert_rule_test: { eval_time: string }[];
    }[]) {
      const from = /from T \+ (\d+)h$/.exec(group.name);
      expect(from, `group "${group.name}" names its start`).not.toBeNull();
      const zero = unix(T) + Number(from![1]) * 3600;
      const steps = Math.max(...group.alert_rule_test.map((c) => parseInt(c.eval_time, 10))) + 2;
      group.input_series = all.map((x) => ({
        series: x.series,
        values: `${x.name.endsWith('_seconds') ? x.value - zero : x.value}+0x${steps}`,
      }));
    }
    if (only !== undefined) spec.tests = [spec.tests[only]];
    const f = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-rules-')), 'trellis.rules.test.yml');
    fs.writeFileSync(f, stringify(spec));
    return f;
  }

  it('pass promtool check rules', async () => {
    const r = await tool('promtool', ['check', 'rules', RULES]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS: 15 rules found/);
  });

  it('fire as trellis.rules.test.yml expects on the series a real mesh wrote (promtool test rules)', async () => {
    const r = await tool('promtool', ['test', 'rules', rulesTest()]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/SUCCESS/);
  });

  it('fail when a metric name drifts: the rules test is not vacuous', async () => {
    const drifted = rulesTest(
      (s) =>
        s.name === 'trellis_leaf_renew_at_seconds' ? { ...s, series: s.series.replace('renew_at', 'renewal') } : s,
      0,
    );
    const r = await tool('promtool', ['test', 'rules', drifted]);
    expect(r.code).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/TrellisLeafPastRenewal/);
  });
});
