/**
 * What a CLI was built as. The self-contained build (scripts/dist/build.mjs) defines
 * TRELLIS_BUILD with esbuild; run from the workspace (packages/x/dist) it is undefined.
 * Informational only: a file reporting its own digest proves nothing; the signed
 * release manifest is the proof (docs/installing.md).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

declare const TRELLIS_BUILD: { commit: string; date: string } | undefined;

export interface BuildInfo {
  /** The newest commit that changed what went into the bundle ("-dirty" if the tree differed from it). */
  commit: string;
  /** That commit's date (RFC 3339): the build's only notion of time, so two builds agree. */
  date: string;
  /** The file running now and its SHA-256, as the release manifest lists it. */
  file: string;
  sha256: string;
}

/**
 * The build this process runs from, or undefined when it runs from the workspace rather than a self-contained build.
 */
function buildInfo(): BuildInfo | undefined {
  if (typeof TRELLIS_BUILD === 'undefined') return undefined;
  // Inside a bundle, every module's import.meta.url is the bundle's own file.
  const file = fileURLToPath(import.meta.url);
  const sha256 = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  return { commit: TRELLIS_BUILD.commit, date: TRELLIS_BUILD.date, file, sha256 };
}

/** Whether this process runs from a self-contained build, which ships its scripts (installer.sh) beside itself. */
export function isSelfContainedBuild(): boolean {
  return typeof TRELLIS_BUILD !== 'undefined';
}

/** The lines `version` prints, for every CLI. */
function renderVersion(tool: string, info: BuildInfo | undefined): string {
  if (!info) return `${tool}: not a self-contained build (run from the workspace); build one with pnpm dist\n`;
  return [
    `${tool}`,
    `commit  ${info.commit}`,
    `date    ${info.date}`,
    `file    ${info.file}`,
    `sha256  ${info.sha256}`,
    'this digest is what the file says of itself: check it against the signed release manifest ' +
      '(scripts/dist/verify-release.sh)',
    '',
  ].join('\n');
}

/** `version`, the same in every CLI: reads no store, no key and no identity. */
export function versionCommand(tool: string) {
  return {
    command: 'version',
    describe: 'Print the commit and SHA-256 this file was built as (check them against the signed release manifest)',
    handler: (): void => {
      process.stdout.write(renderVersion(tool, buildInfo()));
    },
  };
}
