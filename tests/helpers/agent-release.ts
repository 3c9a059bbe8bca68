/**
 * The agent as a host receives it: one self-contained file (esbuild, as `pnpm
 * dist` builds it) and the installer script it runs. Built without the
 * release's build stamp, so it finds installer.sh as the workspace build does
 * (one level up); docs/install-host.md lays the files out for both.
 */
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { REPO } from './cli.js';

export async function agentRelease(dir: string): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  await build({
    entryPoints: [path.join(REPO, 'packages/agent/dist/main.js')],
    outfile: path.join(dir, 'trellis-agent.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
    // CommonJS dependencies inside an ES module bundle call require().
    banner: {
      js: "import { createRequire as __trellisRequire } from 'node:module'; const require = __trellisRequire(import.meta.url);",
    },
  });
  fs.copyFileSync(path.join(REPO, 'packages/agent/installer.sh'), path.join(dir, 'installer.sh'));
  return dir;
}
