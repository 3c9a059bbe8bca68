/**
 * Steady HTTPS traffic between deployed hosts, for drills: each request reads
 * the client's key, chain, trust and CRLs from its deploy target's current
 * release (so it follows deploys, as a real host would). Runs until the stop file
 * appears; writes its tally.
 *
 *   tsx tests/helpers/load.ts spec.json
 */
import fs from 'node:fs';
import path from 'node:path';
import { request } from './servers.js';

interface Pair {
  name: string;
  port: number;
  servername: string;
  clientDir: string;
}

const spec = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as {
  pairs: Pair[];
  stopFile: string;
  resultFile: string;
  workers: number;
  /** Between one worker's requests: steady traffic without taking the cores the servers and the CLIs need. */
  pauseMs?: number;
};
let total = 0;
const failures: { pair: string; at: string; result: string }[] = [];

async function worker(offset: number): Promise<void> {
  for (let i = offset; !fs.existsSync(spec.stopFile); i++) {
    const p = spec.pairs[i % spec.pairs.length]!;
    let r: number | string;
    try {
      // One release for the whole request: `current` may be switched between two reads, and a key from one release
      // with the chain of the next is no host's state (the installer keeps the previous release, so this one stays).
      const release = fs.realpathSync(path.join(p.clientDir, 'current'));
      const f = (x: string) => fs.readFileSync(path.join(release, x), 'utf8');
      // The client checks the server as the edge does: CRLs along the whole chain, from its own release.
      r = await request(p.port, p.servername, {
        name: p.name,
        key: f('key.pem'),
        chain: f('chain.pem'),
        ca: f('trust.openssl.pem'),
        crl: f('crl.pem'),
      });
    } catch (e) {
      // A release the host cannot read is a failed call too, and must not end the tally.
      r = `client error: ${(e as Error).message}`;
    }
    total++;
    if (r !== 200) failures.push({ pair: p.name, at: new Date().toISOString(), result: String(r) });
    if (spec.pauseMs) await new Promise((ok) => setTimeout(ok, spec.pauseMs));
  }
}

try {
  await Promise.all(Array.from({ length: spec.workers }, (_, i) => worker(i)));
} finally {
  fs.writeFileSync(spec.resultFile, JSON.stringify({ total, failures }));
}
