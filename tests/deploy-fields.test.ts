/**
 * Every deploy field by pattern, in-process: what a scope file and the
 * allow-list in trellis.yaml accept, and what they refuse (exit 2, naming the
 * field). The same rules run in the CLIs (tests/pr-attacks.test.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseMeshConfig, parseScope, serializeMeshConfig } from '../packages/core/src/config/config.js';
import { newIdentity } from '../packages/core/src/custody/custody.js';
import { allowListChanges, resolveTarget, EMPTY_ALLOW_LIST } from '../packages/core/src/config/deploy-allow-list.js';
import type { TrellisError } from '../packages/core/src/model/errors.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA/TKLibEc18gpv+xIYTkcKC5PWK9g4m+7H/U9y/jYl/';
// A well-formed base64 blob that names ssh-rsa: refused under the ssh-ed25519 prefix.
const MISLABELLED =
  `ssh-ed25519 ` +
  `${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from('ssh-rsa'), Buffer.alloc(16)]).toString('base64')}`;
let base: string;
let recipient: string;

beforeAll(async () => {
  recipient = (await newIdentity()).recipient;
  base = serializeMeshConfig({
    mesh: 'p',
    trustDomain: 'mesh.example',
    recipients: { offline: [(await newIdentity()).recipient], ci: (await newIdentity()).recipient },
  });
});

const scopeWith = (target: Record<string, unknown>) =>
  stringify({ kind: 'region', services: { api: { deploy: [target] } } });
const refusal = (fn: () => unknown): TrellisError | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return e as TrellisError;
  }
};

describe("a scope file's deploy fields", () => {
  it.each([
    ['an ssh entry that is an option', { type: 'ssh', host: '-oProxyCommand=x', path: '/srv/a' }, 'host'],
    ['an ssh entry with upper case', { type: 'ssh', host: 'Web-1', path: '/srv/a' }, 'host'],
    ['a relative path', { type: 'dir', path: 'srv/a' }, 'path'],
    ['a path with ..', { type: 'dir', path: '/srv/../etc' }, 'path'],
    ['a path with .', { type: 'dir', path: '/srv/./a' }, 'path'],
    ['a path with an empty segment', { type: 'dir', path: '/srv//a' }, 'path'],
    ['a path with a trailing slash', { type: 'dir', path: '/srv/a/' }, 'path'],
    ['a path with a space', { type: 'dir', path: '/srv/a b' }, 'path'],
    ['a path with a newline', { type: 'dir', path: '/srv/a\nb' }, 'path'],
    ['a path with a quote', { type: 'dir', path: "/srv/a'b" }, 'path'],
    ['a reload that is a command', { type: 'dir', path: '/srv/a', reload: 'systemctl reload nginx' }, 'reload'],
    ['a user that is an option', { type: 'ssh', host: 'web-1', path: '/srv/a', user: '-oX' }, 'user'],
    ['a user with a space', { type: 'ssh', host: 'web-1', path: '/srv/a', user: 'a b' }, 'user'],
    ['a port out of range', { type: 'ssh', host: 'web-1', path: '/srv/a', port: 70000 }, 'port'],
    ['a host key with trailing junk', { type: 'ssh', host: 'web-1', path: '/srv/a', hostKey: `${KEY} x` }, 'hostKey'],
    [
      'a host key whose blob names another algorithm',
      { type: 'ssh', host: 'web-1', path: '/srv/a', hostKey: MISLABELLED },
      'hostKey',
    ],
    [
      'an identityFile that is relative',
      { type: 'ssh', host: 'web-1', path: '/srv/a', identityFile: 'id' },
      'identityFile',
    ],
    ['a namespace with a dot', { type: 'kubernetes', name: 'api', namespace: 'a.b' }, 'namespace'],
    ['a namespace in upper case', { type: 'kubernetes', name: 'api', namespace: 'Mesh' }, 'namespace'],
    ['an object name over 247 characters', { type: 'kubernetes', name: 'a'.repeat(248) }, 'name'],
    ['a context that is an option', { type: 'kubernetes', name: 'api', context: '--kubeconfig=/x' }, 'context'],
    ['a sealed host with a slash', { type: 'sealed', host: '../x' }, 'host'],
    ['a sealed host with an empty label', { type: 'sealed', host: 'web..x' }, 'host'],
    ['a sealed recipient that is not one', { type: 'sealed', host: 'web-2', recipient: 'age1NOTONE' }, 'recipient'],
    ['a check that is an option', { type: 'dir', path: '/srv/a', check: '-x:443' }, 'check'],
    ['a check with a port out of range', { type: 'dir', path: '/srv/a', check: '127.0.0.1:0' }, 'check'],
    ['a check with a path but no https', { type: 'dir', path: '/srv/a', check: '127.0.0.1:443/x' }, 'check'],
    ['an unknown key', { type: 'dir', path: '/srv/a', command: 'x' }, 'command'],
  ])('refuses %s (exit 2, naming the field)', (_, target, field) => {
    const e = refusal(() => parseScope(scopeWith(target), 'us-east-1', 'mesh.example'));
    expect(e?.reason).toBe('bad-scope');
    expect(e?.exitCode).toBe(2);
    expect(e?.place).toEqual({ file: 'scopes/us-east-1.yaml', field: `services.api.deploy[0].${field}` });
  });

  it.each([
    [
      'a dir target with a named reload and a check',
      { type: 'dir', path: '/etc/trellis/api', reload: 'nginx', check: 'api-east' },
    ],
    // An endpoint where an entry name belongs parses (as scope files once wrote it): deploy refuses it (exit 3).
    ['a check that is still an endpoint', { type: 'dir', path: '/srv/a', check: '127.0.0.1:443' }],
    ['an https check on an IPv6 literal', { type: 'dir', path: '/srv/a', check: 'https://[::1]:8443/health' }],
    ['an ssh target naming an entry', { type: 'ssh', host: 'web-1', path: '/srv/tls/api' }],
    [
      'a kubernetes target with an EKS context',
      { type: 'kubernetes', name: 'api-tls', namespace: 'mesh', context: 'arn:aws:eks:us-east-1:123:cluster/prod' },
    ],
    ['a sealed target naming a host', { type: 'sealed', host: 'web-2' }],
    ['an ssh target naming an entry by its host name', { type: 'ssh', host: 'web-1.internal', path: '/srv/a' }],
  ])('accepts %s', (_, target) => {
    expect(parseScope(scopeWith(target), 'us-east-1', 'mesh.example').services[0]!.deploy[0]).toMatchObject(target);
  });
});

describe("trellis.yaml's allow-list", () => {
  const withDeploy = (deploy: unknown) => `${base}${stringify({ deploy })}`;
  const ssh = (over: Record<string, unknown>) => ({
    ssh: { 'web-1': { host: 'web-1.internal', hostKey: KEY, paths: ['/srv'], ...over } },
  });
  it.each([
    ['an ssh host that is an option', ssh({ host: '-oProxyCommand=x' }), 'deploy.ssh.web-1.host'],
    ['an IPv4 literal out of range', ssh({ host: '300.1.1.1' }), 'deploy.ssh.web-1.host'],
    ['a host name with an underscore', ssh({ host: 'web_1.internal' }), 'deploy.ssh.web-1.host'],
    ['a host name whose last label is numeric', ssh({ host: 'web.123' }), 'deploy.ssh.web-1.host'],
    ['a host name with an empty label', ssh({ host: 'web..internal' }), 'deploy.ssh.web-1.host'],
    ['an ssh entry without a host key', { ssh: { 'web-1': { host: 'web-1', paths: [] } } }, 'deploy.ssh.web-1.hostKey'],
    ['an ssh entry with an unknown key', ssh({ proxyCommand: 'x' }), 'deploy.ssh.web-1.proxyCommand'],
    ['an allowed path with ..', { dir: { paths: ['/srv/../etc'] } }, 'deploy.dir.paths[0]'],
    ['a reload command over two lines', { reload: { nginx: 'a\nb' } }, 'deploy.reload.nginx'],
    ['a reload name that is not an entry name', { reload: { 'Nginx Reload': 'x' } }, 'deploy.reload.Nginx Reload'],
    [
      'a namespace that is not a label',
      { kubernetes: { prod: { namespaces: ['A_B'] } } },
      'deploy.kubernetes.prod.namespaces[0]',
    ],
    ['a context that is an option', { kubernetes: { '-x': { namespaces: [] } } }, 'deploy.kubernetes.-x'],
    [
      'a sealed recipient that does not parse',
      { sealed: { 'web-2': { recipient: 'age1qqqq' } } },
      'deploy.sealed.web-2.recipient',
    ],
    ['an unknown section', { hooks: {} }, 'deploy.hooks'],
    ...(
      [
        ['a probe address with a path', { address: '127.0.0.1:443/x' }, 'address'],
        ['a probe address that is an https:// URL', { address: 'https://a.internal:443' }, 'address'],
        ['a probe address without a port', { address: 'a.internal' }, 'address'],
        ['a probe address that is an option', { address: '-oX:443' }, 'address'],
        ['a probe path with a space', { path: '/a b' }, 'path'],
        ['a probe path that is relative', { path: 'healthz' }, 'path'],
        ['a probe without a SPIFFE ID', { spiffe: undefined }, 'spiffe'],
        ['a probe SPIFFE ID of another scheme', { spiffe: 'https://us-east-1.mesh.example/api' }, 'spiffe'],
        ['a probe with an unknown key', { proxy: 'http://x' }, 'proxy'],
      ] as const
    ).map(([name, over, f]) => [
      name,
      { probe: { 'api-east': { address: '127.0.0.1:443', spiffe: 'spiffe://us-east-1.mesh.example/api', ...over } } },
      `deploy.probe.api-east.${f}`,
    ]),
  ])('refuses %s (exit 2, naming the field)', (_, deploy, field) => {
    const e = refusal(() => parseMeshConfig(withDeploy(deploy)));
    expect(e?.exitCode).toBe(2);
    expect(e?.place).toEqual({ file: 'trellis.yaml', field });
  });

  it('reads deploy.probe entries, and leaves the section out when there is none (older confirmations keep their digest)', () => {
    const probe = {
      'api-east': { address: '[::1]:8443', path: '/healthz', spiffe: 'spiffe://us-east-1.mesh.example/api' },
    };
    expect(parseMeshConfig(withDeploy({ probe })).deploy.probe).toEqual(probe);
    expect('probe' in parseMeshConfig(withDeploy({ dir: { paths: ['/srv'] } })).deploy).toBe(false);
    expect('probe' in parseMeshConfig(withDeploy({ dir: { paths: ['/srv'] }, probe: {} })).deploy).toBe(false);
  });

  it('accepts host names, IPv4 and IPv6 literals, and fills the default port', () => {
    for (const host of ['web-1.internal', '10.0.0.5', '::1', 'fe80::1:2', 'localhost']) {
      expect(parseMeshConfig(withDeploy(ssh({ host }))).deploy.ssh['web-1']).toEqual({
        host,
        port: 22,
        hostKey: KEY,
        paths: ['/srv'],
      });
    }
  });
});

describe('selections resolve only through the allow-list', () => {
  const allow = () => ({
    ...EMPTY_ALLOW_LIST,
    reload: { nginx: 'systemctl reload nginx' },
    dir: { paths: ['/etc/trellis'] },
    ssh: { 'web-1': { host: '10.0.0.5', port: 2222, user: 'deploy', hostKey: KEY, paths: ['/etc/trellis'] } },
    sealed: { 'web-2': { recipient } },
  });
  it.each([
    ['a path at an allowed directory', { type: 'dir', path: '/etc/trellis' }, { type: 'dir', path: '/etc/trellis' }],
    [
      'a path under it, with a named reload',
      { type: 'dir', path: '/etc/trellis/api', reload: 'nginx' },
      { reloadCommand: 'systemctl reload nginx' },
    ],
    [
      'an ssh entry: address, port, user and key from the allow-list',
      { type: 'ssh', host: 'web-1', path: '/etc/trellis/api' },
      { address: '10.0.0.5', port: 2222, user: 'deploy', hostKey: KEY },
    ],
    ['a sealed host: the recipient from the allow-list', { type: 'sealed', host: 'web-2' }, () => ({ recipient })],
  ])('resolves %s', (_, sel, want) => {
    expect(resolveTarget(allow(), sel as never, 'at')).toMatchObject(typeof want === 'function' ? want() : want);
  });
  it.each([
    ['a sibling that shares the prefix', { type: 'dir', path: '/etc/trellis-evil' }, 'at.path'],
    ['a reload not allowed', { type: 'dir', path: '/etc/trellis', reload: 'pwn' }, 'at.reload'],
    ['an unknown ssh entry', { type: 'ssh', host: 'web-9', path: '/etc/trellis' }, 'at.host'],
    [
      'an ssh user set in the scope file',
      { type: 'ssh', host: 'web-1', path: '/etc/trellis', misplaced: { user: 'root' } },
      'at.user',
    ],
    ['an unknown sealed host', { type: 'sealed', host: 'web-9' }, 'at.host'],
    [
      'a kubectl context with no entry',
      { type: 'kubernetes', name: 'a', namespace: 'mesh', context: 'prod' },
      'at.context',
    ],
  ])('refuses %s', (_, sel, field) => {
    expect(resolveTarget(allow(), sel as never, 'at')).toMatchObject({ field });
  });
  it('names each added, removed and changed entry', () => {
    const before = allow();
    const after = {
      ...allow(),
      reload: { haproxy: 'x' },
      dir: { paths: ['/etc/trellis', '/srv'] },
      sealed: { 'web-2': { recipient: 'age1other' } },
    };
    expect(allowListChanges(before, after)).toEqual([
      'deploy.reload.haproxy added: "x"',
      'deploy.reload.nginx removed (was "systemctl reload nginx")',
      `deploy.sealed.web-2 changed: {"recipient":"${recipient}"} → {"recipient":"age1other"}`,
      'deploy.dir.paths /srv added',
    ]);
    expect(allowListChanges(before, allow())).toEqual([]);
  });
});

describe('arguments reach ssh after --', () => {
  it('every option comes before --, the destination after it', async () => {
    const { sshArgs } = await import('../packages/ci/src/targets/ssh.js');
    const args = sshArgs(
      {
        type: 'ssh',
        host: 'web-1',
        path: '/srv/a',
        address: '10.0.0.5',
        port: 2222,
        user: 'deploy',
        hostKey: KEY,
        identityFile: '/run/key',
      },
      '/tmp/kh',
    );
    expect(args.slice(args.indexOf('--'))).toEqual(['--', 'deploy@10.0.0.5']);
    expect(args.slice(0, args.indexOf('--'))).toEqual(
      expect.arrayContaining(['-p', '2222', '-i', '/run/key', '-o', 'StrictHostKeyChecking=yes']),
    );
  });
});
