/**
 * Hosts honour revocation: trellis-agent checks a sealed release's signer
 * against the root CRLs it carries and the newest this host has seen, refuses
 * a burned, expired or not-yet-valid signer, a CRL rollback and a release
 * dated in its future, and changes nothing when it refuses. Real processes:
 * trellis-root recover, trellis-ci deploy, trellis-agent; forged releases are
 * signed with a burned key through core's sealRelease, as a thief would.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  encryptTo,
  fingerprint,
  caKeyFromPem,
  newIdentity,
  parseCertificate,
  sealRelease,
  serializeHostState,
  tryDecrypt,
  type Release,
} from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import { baseEnv, AGENT_BIN, expectRefused, noteCliRun, type Reason } from './helpers/cli.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-agent-revocation-'));
const DAY = 86_400_000;
const STATE = '.trellis-host-state.json';
/** RFC 3339 at an offset from the real clock (the agent judges by the real clock). */
const at = (offset: number) => new Date(Date.now() + offset).toISOString();

let host: { identity: string; recipient: string };
let idFile: string;
beforeAll(async () => {
  host = await newIdentity();
  idFile = path.join(work, 'host.identity');
  fs.writeFileSync(idFile, host.identity);
});

const sealedTo = () => [{ api: { deploy: [{ type: 'sealed', host: 'web-1' }] } }];
/** A mesh whose us-east-1/api is sealed to web-1, the host's recipient confirmed in trellis.yaml's allow-list. */
const meshAt = async (now?: string, extra: { intermediates?: boolean } = {}, own?: 'own keys') => {
  const m = await (own ? FakeMesh.fresh : FakeMesh.create)({
    scopes: { global: [], 'us-east-1': sealedTo() },
    ...(now ? { now } : {}),
    ...extra,
  });
  if (extra.intermediates !== false) await m.allow({ sealed: { 'web-1': { recipient: host.recipient } } }, { now });
  return m;
};

interface Agent {
  code: number;
  stdout: string;
  stderr: string;
}
async function install(bundle: string, dir: string, roots: string, flags: string[] = []): Promise<Agent> {
  const r = await execa('node', [AGENT_BIN, 'install', '--bundle', bundle, '--dir', dir, '--roots', roots, ...flags], {
    env: baseEnv({ TRELLIS_AGENT_IDENTITY_FILE: idFile }) as NodeJS.ProcessEnv,
    extendEnv: false,
    reject: false,
  });
  noteCliRun(AGENT_BIN, r);
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** Everything under a host's release directory: files by content, symlinks by target. */
function hostSnapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const p = path.join(rel, e.name);
      if (e.isSymbolicLink()) out[p] = `-> ${fs.readlinkSync(path.join(dir, p))}`;
      else if (e.isDirectory()) walk(p);
      else out[p] = fs.readFileSync(path.join(dir, p), 'utf8');
    }
  };
  walk('');
  return out;
}

/**
 * A refusal: its reason and exit code; the message, which check refused (release-refused covers them all, so its
 * words are the case); nothing installed, host state unchanged.
 */
async function refusedOnHost(run: Promise<Agent>, dir: string, reason: Reason, message: RegExp): Promise<void> {
  const before = hostSnapshot(dir);
  const r = await run;
  expectRefused(r, reason);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at .*\.js:\d+/); // no stack trace
  expect(r.stderr + r.stdout).not.toMatch(/AGE-SECRET-KEY/);
  expect(hostSnapshot(dir)).toEqual(before);
}

/** What a sealed release says, opened with the host's identity (as the agent does). */
async function openAsHost(bundle: string): Promise<{ created: string; rootCrl: string; files: Release }> {
  const opened = await tryDecrypt([host.identity], fs.readFileSync(bundle, 'utf8'));
  if (!opened.ok) throw new Error('the host cannot open its bundle');
  return JSON.parse(opened.text).release;
}

interface Signer {
  cert: string;
  keyPem: string;
}
/** The scope's intermediate as the CI identity opens it: what a thief of CI holds. */
async function intermediateOf(m: FakeMesh, scope = 'us-east-1'): Promise<Signer> {
  const ci = fs
    .readFileSync(m.ciIdentityFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('AGE-SECRET-KEY'));
  const opened = await tryDecrypt(ci, m.read(`bundles/${scope}/intermediate.key.age`));
  if (!opened.ok) throw new Error('cannot open the intermediate key');
  return { cert: m.read(`bundles/${scope}/intermediate.pem`), keyPem: opened.text };
}

let forged = 0;
/** A release sealed to the host and signed with `signer`, outside trellis-ci. */
async function forge(signer: Signer, p: { rootCrl: string; files: Release; created?: string }): Promise<string> {
  const file = path.join(work, `forged-${++forged}.age`);
  fs.writeFileSync(
    file,
    await sealRelease(
      {
        version: 1,
        scope: 'us-east-1',
        service: 'api',
        host: 'web-1',
        created: p.created ?? at(0),
        rootCrl: p.rootCrl,
        files: p.files,
      },
      host.recipient,
      { scope: 'us-east-1', ...(await caKeyFromPem('intermediate', parseCertificate(signer.cert), signer.keyPem)) },
    ),
  );
  return file;
}

async function deploy(m: FakeMesh, out: string, now?: string): Promise<string> {
  const d = await m.ci(['deploy', '--sealed-out', out, ...(now ? ['--now', now, '--now-ahead'] : [])]);
  expect(d.code, d.stdout + d.stderr).toBe(0);
  return path.join(out, 'us-east-1', 'api', 'web-1.age');
}

const pinRoots = (m: FakeMesh, name: string) => {
  const f = path.join(work, `${name}-roots.pem`);
  fs.writeFileSync(f, m.read('bundles/root/roots.pem'));
  return f;
};
const hostState = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, STATE), 'utf8'));
const rememberedCrls = (dir: string): Record<string, string> => hostState(dir).rootCrls;

describe('a real recover burns the old intermediate on every host that has seen the new root CRL', () => {
  let m: FakeMesh;
  let roots: string;
  let burned: Signer;
  let oldCrl: string;
  let oldFiles: Release;
  let seenOld: string; // a host that installed a release from before the recovery only
  let seenNew: string; // a host that installed the first release after it
  beforeAll(async () => {
    m = await meshAt();
    roots = pinRoots(m, 'recover');
    const before = await deploy(m, path.join(work, 'before'));
    burned = await intermediateOf(m); // the thief's copy, taken before the recovery
    oldCrl = m.read('bundles/root/crl.pem');
    oldFiles = (await openAsHost(before)).files;
    seenOld = path.join(work, 'host-seen-old');
    seenNew = path.join(work, 'host-seen-new');
    for (const d of [seenOld, seenNew]) expect((await install(before, d, roots)).code).toBe(0);
    const rec = await m.root(['recover', 'us-east-1', '--reason', 'keyCompromise']);
    expect(rec.code, rec.stderr).toBe(0);
    expect(m.read('bundles/root/crl.pem')).not.toBe(oldCrl);
    expect((await m.ci(['renew'])).code).toBe(0);
  });

  it('a good release after the recovery is accepted, and the host remembers the new root CRL', async () => {
    const after = await deploy(m, path.join(work, 'after'));
    expect((await openAsHost(after)).rootCrl).toBe(m.read('bundles/root/crl.pem'));
    const r = await install(after, seenNew, roots, ['--expect', 'us-east-1/api']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/us-east-1\/api .*installed releases\//);
    expect(Object.values(rememberedCrls(seenNew))).toEqual([m.read('bundles/root/crl.pem')]);
    expect(fs.statSync(path.join(seenNew, STATE)).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(seenNew).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it.each([
    [
      'carrying the new root CRL, to a host that has only seen the old one',
      () => seenOld,
      () => m.read('bundles/root/crl.pem'),
    ],
    [
      'carrying the old root CRL, to a host that has seen the new one: the remembered CRL wins',
      () => seenNew,
      () => oldCrl,
    ],
  ])('a release signed with the burned key %s is refused', async (_name, dir, crl) => {
    const bundle = await forge(burned, { rootCrl: crl(), files: oldFiles });
    await refusedOnHost(
      install(bundle, dir(), roots),
      dir(),
      'release-refused',
      new RegExp(
        /refused sealed release: its signer .*us-east-1.* \(serial [0-9A-F]+\) is revoked in root CRL /.source +
          /number \d+ of .*since/.source,
      ),
    );
  });

  it('a root CRL older than the one the host has seen is refused, even from a signer in good standing', async () => {
    const bundle = await forge(await intermediateOf(m), { rootCrl: oldCrl, files: oldFiles });
    await refusedOnHost(
      install(bundle, seenNew, roots),
      seenNew,
      'release-refused',
      /its root CRL of .* is number \d+, older than number \d+ this host has seen: a rollback of revocation/,
    );
  });

  it('a root CRL that no pinned root signed is refused', async () => {
    const other = await meshAt(undefined, {}, 'own keys');
    const bundle = await forge(await intermediateOf(m), {
      rootCrl: other.read('bundles/root/crl.pem'),
      files: oldFiles,
    });
    await refusedOnHost(
      install(bundle, seenNew, roots),
      seenNew,
      'release-refused',
      /its root CRL: the CRL issued by .* is not signed by a pinned root/,
    );
  });

  it('a release without a root CRL (sealed by an older trellis-ci) is refused', async () => {
    const bundle = await forge(await intermediateOf(m), { rootCrl: undefined as unknown as string, files: oldFiles });
    await refusedOnHost(install(bundle, seenNew, roots), seenNew, 'release-refused', /carries no root CRL.*upgrade it/);
  });
});

describe('a release dated in the future cannot lock out later ones', () => {
  let m: FakeMesh;
  let roots: string;
  beforeAll(async () => {
    m = await meshAt();
    roots = pinRoots(m, 'future');
  });

  it('one dated an hour ahead is refused without moving the replay mark; a normal release installs right after', async () => {
    const dir = path.join(work, 'host-future');
    // A clone signs the future release, so the real store's ledger never runs ahead of the clock.
    const future = await deploy(m.clone(), path.join(work, 'future'), at(3_600_000));
    await refusedOnHost(
      install(future, dir, roots),
      dir,
      'release-refused',
      /it is dated .*, beyond the 5m clock-skew allowance \(--clock-skew\)/,
    );
    const now = await deploy(m, path.join(work, 'now'));
    const r = await install(now, dir, roots);
    expect(r.code, r.stderr).toBe(0);
    expect(hostState(dir).newestRelease).toBe((await openAsHost(now)).created);
    // A host that allows for a larger skew takes the same release.
    const lenient = path.join(work, 'host-lenient');
    expect((await install(future, lenient, roots, ['--clock-skew', '2h'])).code).toBe(0);
  });

  it('a root CRL dated beyond the allowance is refused (it would otherwise raise the remembered CRL number)', async () => {
    const dir = path.join(work, 'host-future-crl');
    const ahead = m.clone();
    expect((await ahead.root(['crl', '--now', at(DAY), '--now-ahead'])).code).toBe(0);
    const files = (await openAsHost(await deploy(m, path.join(work, 'now-crl')))).files;
    const bundle = await forge(await intermediateOf(m), { rootCrl: ahead.read('bundles/root/crl.pem'), files });
    await refusedOnHost(
      install(bundle, dir, roots),
      dir,
      'release-refused',
      /its root CRL of .* is dated .*, beyond the 5m clock-skew allowance/,
    );
  });
});

describe('the signer must be valid now', () => {
  it('an expired intermediate is refused, though its root and root CRL are good', async () => {
    // Minted 3 years and 10 days ago with the default 3y lifetime; the custodian re-signed the root CRL today.
    const m = await meshAt(at(-(3 * 365 + 10) * DAY));
    expect((await m.root(['crl'])).code).toBe(0);
    const signer = await intermediateOf(m);
    expect(parseCertificate(signer.cert).notAfter.getTime()).toBeLessThan(Date.now());
    const dir = path.join(work, 'host-expired');
    const bundle = await forge(signer, {
      rootCrl: m.read('bundles/root/crl.pem'),
      files: { 'trust.pem': m.read('bundles/us-east-1/trust.pem') },
    });
    await refusedOnHost(
      install(bundle, dir, pinRoots(m, 'expired')),
      dir,
      'release-refused',
      /its signer .*us-east-1.* is expired on \d{4}-/,
    );
  });

  it('an intermediate not yet valid is refused', async () => {
    const m = await meshAt(at(-DAY), { intermediates: false });
    const crl = m.read('bundles/root/crl.pem');
    expect((await m.root(['intermediate', '--pending', '--now', at(DAY), '--now-ahead'])).code).toBe(0);
    const dir = path.join(work, 'host-not-yet');
    const bundle = await forge(await intermediateOf(m), {
      rootCrl: crl,
      files: { 'trust.pem': m.read('bundles/us-east-1/trust.pem') },
    });
    await refusedOnHost(
      install(bundle, dir, pinRoots(m, 'not-yet')),
      dir,
      'release-refused',
      /its signer .*us-east-1.* is not valid until \d{4}-/,
    );
  });
});

describe('a root CRL past its nextUpdate', () => {
  // The root CRL is signed for 180 days; this mesh's was signed 200 days ago and never re-signed.
  let m: FakeMesh;
  let bundle: string;
  let roots: string;
  beforeAll(async () => {
    m = await meshAt(at(-200 * DAY));
    expect((await m.ci(['renew'])).code).toBe(0);
    bundle = await deploy(m, path.join(work, 'lapsed'));
    roots = pinRoots(m, 'lapsed');
  });

  it('is relied on within the grace period, with a loud warning', async () => {
    const dir = path.join(work, 'host-lapsed-grace');
    const r = await install(bundle, dir, roots);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        /^WARNING: the root CRL of .* is past its nextUpdate .*; relied on for 30d after it /.source +
          /\(--crl-grace\), then this host refuses every release: the custodian must run trellis-root crl/.source,
        'm',
      ),
    );
    expect(Object.values(rememberedCrls(dir))).toEqual([m.read('bundles/root/crl.pem')]);
  });

  it('is refused beyond it', async () => {
    const dir = path.join(work, 'host-lapsed-refused');
    await refusedOnHost(
      install(bundle, dir, roots, ['--crl-grace', '5d']),
      dir,
      'release-refused',
      new RegExp(
        /the newest root CRL of .* passed its nextUpdate .*, more than the 5d grace \(--crl-grace\) ago; /.source +
          /the custodian must run trellis-root crl, then deploy/.source,
      ),
    );
  });
});

describe('malformed input and host state', () => {
  let m: FakeMesh;
  let roots: string;
  let good: string;
  beforeAll(async () => {
    m = await meshAt();
    roots = pinRoots(m, 'malformed');
    good = await deploy(m, path.join(work, 'malformed'));
  });

  it.each([
    [
      'a bundle that is not a sealed release',
      async () => {
        const f = path.join(work, 'not-a-release.age');
        fs.writeFileSync(f, await encryptTo([host.recipient], 'not json'));
        return f;
      },
      /refused sealed release: not a trellis sealed release/,
    ],
    [
      'a root CRL that does not parse',
      async () =>
        forge(await intermediateOf(m), {
          rootCrl: '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n',
          files: {},
        }),
      /its root CRL does not parse as X509 CRLs/,
    ],
    [
      'a trust bundle that does not parse',
      async () =>
        forge(await intermediateOf(m), {
          rootCrl: m.read('bundles/root/crl.pem'),
          files: { 'trust.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' },
        }),
      /refused sealed release: trust.pem does not parse/,
    ],
    [
      'a created date that is not RFC 3339',
      async () =>
        forge(await intermediateOf(m), { rootCrl: m.read('bundles/root/crl.pem'), files: {}, created: 'yesterday' }),
      /its created date is not a millisecond RFC 3339 UTC timestamp/,
    ],
  ])('%s exits 2', async (name, make, message) => {
    const dir = path.join(work, `host-${name.replace(/\W+/g, '-')}`);
    await refusedOnHost(install(await make(), dir, roots), dir, 'bad-release', message);
  });

  it('a host state that does not parse exits 2, naming the file and what to do', async () => {
    const dir = path.join(work, 'host-bad-state');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, STATE), '{"version":1,"newestRelease":"soon"}\n');
    await refusedOnHost(
      install(good, dir, roots),
      dir,
      'bad-host-state',
      new RegExp(
        `${STATE}: newestRelease: must be a millisecond RFC 3339 UTC timestamp\\n  → restore it from a backup`,
      ),
    );
  });

  it('a remembered root CRL that its root did not sign exits 2: the host state is damaged, not the release', async () => {
    const dir = path.join(work, 'host-forged-state');
    expect((await install(good, dir, roots)).code).toBe(0);
    const other = await meshAt(undefined, {}, 'own keys');
    const root = fingerprint(parseCertificate(m.read('bundles/root/roots.pem')));
    fs.writeFileSync(
      path.join(dir, STATE),
      serializeHostState({ rootCrls: { [root]: other.read('bundles/root/crl.pem') } }),
    );
    await refusedOnHost(
      install(good, dir, roots),
      dir,
      'bad-host-state',
      new RegExp(
        `${STATE}: rootCrls\\.${root}: the remembered CRL: the CRL issued by .* is not signed by a pinned ` +
          `root\n  → restore it from a backup`,
      ),
    );
  });

  it('a --clock-skew that is not a duration exits 2', async () => {
    const dir = path.join(work, 'host-bad-skew');
    await refusedOnHost(
      install(good, dir, roots, ['--clock-skew', 'soon']),
      dir,
      'usage',
      /--clock-skew: "soon" is not a duration/,
    );
  });

  it('the replay mark of an agent that predates host state carries over, and its stamp is retired once state is written', async () => {
    const dir = path.join(work, 'host-legacy');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '.sealed-created'), `${at(DAY)}\n`);
    await refusedOnHost(
      install(good, dir, roots),
      dir,
      'release-refused',
      /than the release installed last .*: a replay/,
    );
    const fresh = path.join(work, 'host-legacy-older');
    fs.mkdirSync(fresh, { recursive: true });
    fs.writeFileSync(path.join(fresh, '.sealed-created'), `${at(-DAY)}\n`);
    expect((await install(good, fresh, roots)).code).toBe(0);
    expect(fs.existsSync(path.join(fresh, '.sealed-created'))).toBe(false);
    expect(hostState(fresh).newestRelease).toBe((await openAsHost(good)).created);
  });
});
