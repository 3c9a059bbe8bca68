/**
 * The agent as a host receives it: one self-contained file and the installer
 * script it runs, from the tests' release-shaped build (helpers/cli.ts);
 * docs/install-host.md lays them out.
 */
import fs from 'node:fs';
import path from 'node:path';
import { AGENT_BIN, CLI_DIR } from './cli.js';

export function agentRelease(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(AGENT_BIN, path.join(dir, 'trellis-agent.mjs'));
  fs.copyFileSync(path.join(CLI_DIR, 'installer.sh'), path.join(dir, 'installer.sh'));
  return dir;
}
