/**
 * Installing a release on a host, through the one installer script
 * (installer.sh) that every target uses: locally here, or over SSH.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import {
  isReleaseFile,
  releaseFileBytes,
  RELEASE_SECRET,
  TrellisError,
  quotePeerOutput,
  childEnv,
  type Release,
} from '@trellis/core';
import { adoptFaultCount, checkOutDir, faultEnv, makeOutDir, writeFileAtomic } from '@trellis/core/store';
import { isSelfContainedBuild } from '@trellis/core/shell';

// The package keeps installer.sh beside dist/; the self-contained build (scripts/dist) ships it beside the bundle.
const INSTALLER_PATH = fileURLToPath(
  new URL(isSelfContainedBuild() ? './installer.sh' : '../installer.sh', import.meta.url),
);

export function installerScript(): string {
  return fs.readFileSync(INSTALLER_PATH, 'utf8');
}

export interface InstallOutcome {
  status: 'installed' | 'unchanged';
  detail: string;
}

/** Reads the installer's verdict; a refusal becomes a TrellisError naming the target. */
export function installOutcome(
  target: string,
  exitCode: number | undefined,
  stdout: string,
  stderr: string,
): InstallOutcome {
  const line =
    stdout
      .split('\n')
      .filter((l) => l.startsWith('trellis-install: '))
      .at(-1)
      ?.slice('trellis-install: '.length) ?? stderr.trim();
  if (exitCode === 0) return { status: line.startsWith('unchanged') ? 'unchanged' : 'installed', detail: line };
  const what =
    exitCode === 10
      ? 'refused an invalid release (the current one stays)'
      : exitCode === 11
        ? 'reload failed and rolled back'
        : `failed (exit ${exitCode})`;
  // The server's own words on a failed reload: the one clue to why, text the target wrote, so escaped and bounded.
  const said = stdout
    .split('\n')
    .filter((l) => l.startsWith('trellis-reload: '))
    .map((l) => l.slice('trellis-reload: '.length))
    .join('\n');
  const server = exitCode === 11 && said.trim() ? `; the reload said: ${quotePeerOutput(said)}` : '';
  throw new TrellisError('peer-failed', `${target}: install ${what}: ${line}${server}`, {
    hint: 'fix the target and rerun trellis-ci deploy',
  });
}

/**
 * Stages `release` beside the target (same filesystem, for the atomic rename)
 * and runs the installer locally. No link is followed below `allowedRoot` (the
 * allow-listed directory; the target itself for the agent's own --dir), and a
 * missing target is made 0755 whatever the umask (out-path.ts).
 */
export async function installLocally(
  targetDir: string,
  release: Release,
  reload?: string,
  allowedRoot?: string,
  at: { file?: string; field?: string } = {},
): Promise<InstallOutcome> {
  const o = {
    flag: at.field ?? '--dir',
    file: at.file,
    anchor: allowedRoot ?? targetDir,
    allowList: allowedRoot !== undefined,
  };
  const target = makeOutDir(targetDir, o);
  checkOutDir(path.join(target, 'releases'), o);
  const staging = fs.mkdtempSync(path.join(target, '.staging-'));
  for (const [name, content] of Object.entries(release)) {
    if (!isReleaseFile(name)) throw new Error(`unexpected release file ${name}`);
    writeFileAtomic(
      path.join(staging, name),
      releaseFileBytes(name, content!),
      RELEASE_SECRET.includes(name) ? 0o600 : 0o644,
    );
  }
  // faultEnv: the test-only crash seam numbers the installer's fsyncs and renames after ours (empty unless
  // TRELLIS_FAULT is set).
  const r = await execa('sh', [INSTALLER_PATH, target, staging, reload ?? ''], {
    reject: false,
    env: {
      ...childEnv(process.env),
      ...faultEnv(),
    } /* no trellis variable (identities above all) reaches the installer or reload */,
    extendEnv: false,
  });
  adoptFaultCount(String(r.stderr));
  return installOutcome(target, r.exitCode, String(r.stdout), String(r.stderr));
}
