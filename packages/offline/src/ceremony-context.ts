/** What each offline command does around a procedure: the posture, the root identity, the ceremony context. */
import fs from 'node:fs';
import { actor, nodeCryptoSeam, requireIdentities, type Mesh } from '@trellis/core';
import type { Ceremony } from './procedures.js';
import { tokenAwareSeam, tokenRootsOnly } from './token.js';
import type { Posture } from './records.js';
import { recipientsToRecord } from './records.js';

/** The offline identity; not asked for when every root key of the store is on a token (only its PIN is). */
export const rootIdentities = (): string[] => (tokenRootsOnly() ? [] : requireIdentities('root', process.env, (p) => fs.readFileSync(p, 'utf8')));

/** The context of one ceremony; refuses unconfirmed recipient changes before any key is opened. */
export function ceremony(mesh: Mesh, now: Date, posture: Posture, confirmRecipients: boolean | undefined): Ceremony {
  return { mesh, now, posture, actor: actor(), recipients: recipientsToRecord(mesh, Boolean(confirmRecipients)), seam: tokenAwareSeam(nodeCryptoSeam) };
}

export const say = (lines: string[]): void => {
  process.stdout.write(lines.map((l) => `${l}\n`).join(''));
};
