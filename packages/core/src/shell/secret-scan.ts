/**
 * No secret in the committed tree. `verify` (no identity needed, so it runs on
 * every pull request) reads every file under bundles/ and scopes/ and the
 * store's top-level files, and names each that holds a PEM private key, an
 * identity age reads, or a trellis identity share. Text that only shows the
 * shape (`AGE-SECRET-KEY-1…` in a document) is no identity: age must parse it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { secretIn } from '../custody/custody.js';
import { READ_LIMITS, readBounded, type Store } from '../store/store.js';
import type { Finding } from '../verify/finding.js';

/** The files a commit carries that trellis owns: bundles/**, scopes/**, the top-level files. */
function committedFiles(store: Store): string[] {
  const walk = (rel: string): string[] => [
    ...store.list(rel).map((f) => path.posix.join(rel, f)),
    ...store.list(rel, 'dir').flatMap((d) => walk(path.posix.join(rel, d))),
  ];
  // The top level is the repository's too: its links and other entries are not trellis's to refuse.
  const top = fs
    .readdirSync(store.dir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
  return [...top, ...walk('bundles'), ...walk('scopes')];
}

export function secretFindings(store: Store): Finding[] {
  const out: Finding[] = [];
  for (const file of committedFiles(store)) {
    const what = secretIn(readBounded(store.abs(file), READ_LIMITS.store));
    if (what)
      out.push({
        level: 'error',
        check: 'custody',
        file,
        message:
          `holds ${what}: a secret must never be in the tree; remove it, purge it from git history, and treat it ` +
          `as exposed (rotate what it opens)`,
      });
  }
  return out;
}
