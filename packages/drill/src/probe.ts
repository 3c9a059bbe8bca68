/**
 * Runs a batch of handshakes and prints their outcomes as JSON. Drills run it
 * under libfaketime (`faketime -f @TIME`), so both TLS stacks judge validity
 * at the drill's simulated instant, exactly as hosts would then.
 *
 *   faketime -f '@2027-03-01 10:00:00' node packages/drill/dist/probe.js pairs.json
 */
import fs from 'node:fs';
import { handshake, type Party } from './mtls.js';

interface Pair {
  client: Party;
  server: Party;
}

const pairs = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Pair[];
const results = [];
for (const p of pairs)
  results.push({ client: p.client.name, server: p.server.name, ...(await handshake(p.client, p.server)) });
process.stdout.write(`${JSON.stringify({ now: new Date().toISOString(), results })}\n`);
