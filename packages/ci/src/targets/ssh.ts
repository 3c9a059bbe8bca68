/**
 * The ssh target: the same installer as `dir`, run on the host over SSH. The
 * host, user, identity file and pinned host key come from the allow-list in
 * trellis.yaml (never learned on first use, never from a scope file); the
 * release travels on the SSH channel's stdin.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import {
  TrellisError,
  childEnv,
  describeTarget,
  releaseFileBytes,
  type DeployTarget,
  type Release,
} from '@trellis/core';
import { installOutcome, installerScript, type InstallOutcome } from '@trellis/agent';

type SshTarget = Extract<DeployTarget, { type: 'ssh' }>;

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
const heredoc = (dest: string, content: string | Uint8Array) =>
  `base64 -d > ${dest} <<'TRELLIS_EOF'\n${Buffer.from(content)
    .toString('base64')
    .replace(/.{1,76}/g, '$&\n')}TRELLIS_EOF\n`;

/** The script the host runs: stage the files, then the shared installer on them. */
function remoteScript(release: Release): string {
  return [
    'set -eu',
    'umask 077',
    'mkdir -p "$1"',
    'staging=$(mktemp -d "$1/.staging-XXXXXX")',
    'installer=$(mktemp)',
    heredoc('"$installer"', installerScript()),
    // Anchor files live in capath/ and anchors/ (names checked by isReleaseFile).
    ...[
      ...new Set(
        Object.keys(release)
          .filter((n) => n.includes('/'))
          .map((n) => n.split('/')[0]!),
      ),
    ].map((d) => `mkdir -p "$staging/${d}"`),
    ...Object.entries(release).map(([name, content]) =>
      heredoc(`"$staging/${name}"`, releaseFileBytes(name, content!)),
    ),
    'set +e',
    'sh "$installer" "$1" "$staging" "$2"',
    'rc=$?',
    'rm -f "$installer"',
    'exit $rc',
    '',
  ].join('\n');
}

export function sshArgs(t: SshTarget, knownHosts: string): string[] {
  return [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'HostKeyAlias=trellis-pinned',
    '-o',
    'ConnectTimeout=10',
    '-p',
    String(t.port),
    ...(t.identityFile ? ['-i', t.identityFile, '-o', 'IdentitiesOnly=yes'] : []),
    // Every field is checked by pattern already; "--" keeps even a bad one from being read as an option.
    '--',
    `${t.user ? `${t.user}@` : ''}${t.address}`,
  ];
}

export async function installOverSsh(t: SshTarget, release: Release, scratch: string): Promise<InstallOutcome> {
  const knownHosts = path.join(scratch, `known_hosts-${t.host}`);
  fs.writeFileSync(knownHosts, `trellis-pinned ${t.hostKey}\n`);
  const r = await execa('ssh', [...sshArgs(t, knownHosts), `sh -s -- ${q(t.path)} ${q(t.reloadCommand ?? '')}`], {
    input: remoteScript(release),
    reject: false,
    env: childEnv(process.env),
    extendEnv: false,
  });
  const label = describeTarget(t);
  if (r.exitCode === 255) {
    const err = String(r.stderr);
    if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No .* host key is known/i.test(err)) {
      throw new TrellisError('peer-failed', `${label}: the host's key does not match the pinned hostKey: refused`, {
        hint:
          'check the host out of band; if it was re-keyed on purpose, the custodian updates ' +
          'deploy.ssh.<host>.hostKey in trellis.yaml and confirms it (trellis-root confirm)',
      });
    }
    throw new TrellisError('peer-failed', `${label}: ssh failed: ${err.trim().split('\n').at(-1)}`, {
      hint: 'check the host, user and identityFile',
    });
  }
  return installOutcome(label, r.exitCode, String(r.stdout), String(r.stderr));
}
