/**
 * A leaf-signing worker thread: fills the scope's template and signs, one
 * chunk of orders a message. It loads the template module alone (node:crypto
 * only), so it starts in milliseconds.
 */
import { parentPort } from 'node:worker_threads';
import type { KeyObject } from 'node:crypto';
import { signLeaves, type LeafOrder, type LeafTemplate } from '@trellis/core/leaf-template';

parentPort!.on('message', (m: { id: number; template: LeafTemplate; orders: LeafOrder[]; key: KeyObject }) => {
  try {
    parentPort!.postMessage({ id: m.id, leaves: signLeaves(m.template, m.orders, m.key) });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
