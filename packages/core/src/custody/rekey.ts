/**
 * Rekey: the same keys, re-encrypted to new recipients. What both CLIs share:
 * trellis.yaml rewritten with the new recipients (comments and layout kept),
 * and each age file re-wrapped from its plaintext.
 */
import { parseDocument } from 'yaml';
import { decryptWith, encryptTo, type IdentityKind } from './custody.js';

/** trellis.yaml's text with recipients.offline and/or recipients.ci replaced; nothing else changes. */
export function withRecipients(configText: string, next: { offline?: string[]; ci?: string }): string {
  const doc = parseDocument(configText);
  if (next.offline) doc.setIn(['recipients', 'offline'], doc.createNode(next.offline));
  if (next.ci) doc.setIn(['recipients', 'ci'], next.ci);
  return doc.toString();
}

/** Opens `armored` with the identities held and encrypts the same plaintext to `recipients` only. */
export async function reencrypt(
  armored: string,
  file: string,
  held: string[],
  kind: IdentityKind,
  recipients: string[],
): Promise<string> {
  return encryptTo(recipients, await decryptWith(held, armored, file, kind));
}
