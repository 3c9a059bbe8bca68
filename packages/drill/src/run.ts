/** What every drill command does around its procedure: read the shape, stand the scratch mesh up, rehearse, judge. */
import type { ScopeDef } from '@trellis/core';
import { clock } from '@trellis/core/shell';
import { PhaseFailed, Rehearsal } from './rehearsal.js';
import { readShape } from './shape.js';

export interface DrillArgs {
  store?: string;
  now?: string;
  keep?: boolean;
  scope?: string;
}

/** A region with services, else global: the scope a root drill's checklist looks through when none is named. */
const firstRegion = (scopes: ScopeDef[]) =>
  (scopes.find((s) => s.kind === 'region' && s.services.length) ?? scopes.find((s) => s.services.length))?.name;

export async function runDrill(a: DrillArgs, procedure: (r: Rehearsal) => Promise<void>): Promise<void> {
  const now = clock(a.now);
  const shape = readShape(a.store);
  const scope = a.scope ?? firstRegion(shape.scopes) ?? 'global';
  const r = new Rehearsal(shape, {
    scope,
    now,
    keep: Boolean(a.keep),
    out: (t) => process.stdout.write(t),
    // Test-only, inert unless set: proves that a drill whose handshakes go wrong fails.
    tamper: process.env.TRELLIS_DRILL_TAMPER || undefined,
  });
  try {
    await r.setUp();
    await procedure(r);
  } catch (e) {
    if (!(e instanceof PhaseFailed)) {
      if (!a.keep) r.discard();
      throw e;
    }
    process.stdout.write(`\nstopped after ${e.message}: the phases after it were not rehearsed\n`);
  }
  process.exitCode = r.finish();
}
