/**
 * Leaf signing on every core: a pool of worker threads (mint-worker.js) that
 * signs a scope's batch in chunks. Key derivation and signing are the cost of
 * a large renew; the main thread meanwhile records the scopes already signed.
 */
import os from 'node:os';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { EncodedLeaf, LeafBatch, LeafSigner } from '@trellis/core';
import type { Timings } from './timings.js';

/** Leaves per message: big enough that messaging is noise, small enough that both cores stay busy to the end. */
const CHUNK = 128;

interface Job {
  id: number;
  batch: LeafBatch;
  from: number;
  to: number;
  key: KeyObject;
  done: (l: EncodedLeaf[]) => void;
  fail: (e: Error) => void;
  posted?: number;
}

export interface MintPool {
  sign: LeafSigner;
  /** True when the workers write each leaf's files into `outDir` as they sign. */
  writesLeafFiles: boolean;
  /** Starts the threads now (they load while the main thread opens the scope keys), rather than on the first batch. */
  warm(): void;
  close(): Promise<void>;
}

/**
 * A pool of `threads` workers (default: every core), started lazily on the
 * first batch. `onSigned(n)` is told of every chunk signed (progress). With
 * `outDir`, the workers also write the leaves' files there (in parallel).
 * With `timings`, each chunk's times are recorded there (TRELLIS_TIMINGS).
 */
export function mintPool(
  onSigned: (n: number) => void = () => {},
  opts: { outDir?: string; threads?: number; timings?: Timings } = {},
): MintPool {
  const threads = opts.threads ?? os.availableParallelism();
  const workers: Worker[] = [];
  const idle: Worker[] = [];
  const queue: Job[] = [];
  const running = new Map<Worker, Job>();
  let next = 0;
  let broken: Error | undefined;

  const start = () => {
    const script = workerScript();
    for (let i = 0; i < threads; i++) {
      const w = new Worker(script);
      const thread = i;
      w.on(
        'message',
        (m: {
          id: number;
          leaves?: EncodedLeaf[];
          signMs?: number;
          filesMs?: number;
          error?: { message: string; code?: string; path?: string };
        }) => {
          const job = running.get(w)!;
          running.delete(w);
          if (m.leaves)
            opts.timings?.chunk(
              thread,
              threads,
              m.leaves.length,
              job.posted!,
              performance.now(),
              m.signMs!,
              m.filesMs!,
            );
          // The worker's error as the main thread would have thrown it: its code decides the exit (a full disk is exit
          // 1).
          if (m.error !== undefined)
            job.fail(Object.assign(new Error(m.error.message), { code: m.error.code, path: m.error.path }));
          else {
            onSigned(m.leaves!.length);
            job.done(m.leaves!);
          }
          idle.push(w);
          pump();
        },
      );
      w.on('error', (e) => {
        broken = e;
        running.get(w)?.fail(e);
        for (const j of queue.splice(0)) j.fail(e);
      });
      workers.push(w);
      idle.push(w);
    }
  };
  const pump = () => {
    while (idle.length && queue.length) {
      const w = idle.pop()!;
      const job = queue.shift()!;
      running.set(w, job);
      job.posted = performance.now();
      const out =
        opts.outDir === undefined
          ? undefined
          : { dir: opts.outDir, scope: job.batch.scope, intermediatePem: job.batch.issuer.pem };
      w.postMessage({
        id: job.id,
        template: job.batch.template,
        orders: job.batch.orders.slice(job.from, job.to),
        key: job.key,
        out,
      });
    }
  };

  const sign: LeafSigner = async (batch, key) => {
    if (broken) throw broken;
    if (!workers.length) start();
    const parts: Promise<EncodedLeaf[]>[] = [];
    for (let from = 0; from < batch.orders.length; from += CHUNK) {
      parts.push(
        new Promise((done, fail) =>
          queue.push({ id: next++, batch, from, to: Math.min(from + CHUNK, batch.orders.length), key, done, fail }),
        ),
      );
    }
    pump();
    return (await Promise.all(parts)).flat();
  };
  return {
    sign,
    writesLeafFiles: opts.outDir !== undefined,
    warm: () => {
      if (!workers.length) start();
    },
    close: async () => void (await Promise.all(workers.map((w) => w.terminate()))),
  };
}

/**
 * The worker beside this module: mint-worker.js in the workspace build, mint-worker.mjs beside a single-file release
 * (scripts/dist).
 */
function workerScript(): URL {
  const release = new URL('./mint-worker.mjs', import.meta.url);
  return fs.existsSync(release) ? release : new URL('./mint-worker.js', import.meta.url);
}
