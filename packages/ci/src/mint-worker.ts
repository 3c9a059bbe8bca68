/**
 * A leaf-signing worker thread: fills the scope's template, signs, and (when
 * told the output directory) writes the leaves' files, one chunk of orders a
 * message. It loads the template module and node:fs only, so it starts fast.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parentPort, threadId } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { signLeaves, type LeafOrder, type LeafTemplate } from '@trellis/core/leaf-template';
import { makeKeyDir, setThreadTag, writeLeafDir } from './leaf-files.js';

setThreadTag(threadId);

interface Message {
  id: number;
  template: LeafTemplate;
  orders: LeafOrder[];
  key: KeyObject;
  out?: { dir: string; scope: string; intermediatePem: string };
}

parentPort!.on('message', (m: Message) => {
  try {
    const t0 = performance.now();
    const leaves = signLeaves(m.template, m.orders, m.key);
    const t1 = performance.now();
    if (m.out) {
      const scopeDir = path.join(m.out.dir, m.out.scope);
      makeKeyDir(scopeDir); // inside the output directory prepareOutDir made
      for (const l of leaves) writeLeafDir(scopeDir, l, m.out.intermediatePem);
    }
    // The DER stays here: the main thread needs the PEM, the fingerprint and the record only.
    // Its own times, for TRELLIS_TIMINGS (timings.ts): signing apart from writing.
    parentPort!.postMessage({
      id: m.id,
      leaves: leaves.map((l) => ({ ...l, der: new Uint8Array(0) })),
      signMs: t1 - t0,
      filesMs: performance.now() - t1,
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    parentPort!.postMessage({ id: m.id, error: { message: err.message, code: err.code, path: err.path } });
  }
});
