/**
 * After a rekey: proof that a retired identity opens nothing in the working
 * tree (every *.age file outside .git and .trellis). Old ciphertext in git
 * history is out of reach of this check, which is why a leaked identity also
 * needs its keys rotated.
 */
import fs from 'node:fs';
import path from 'node:path';
import { tryDecrypt } from '../custody/custody.js';
import type { Finding } from '../verify/finding.js';

/** Every age file of the working tree, relative to `dir`, sorted. */
export function ageFilesIn(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.age'))
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .filter((f) => !/^(\.git|\.trellis)(\/|$)/.test(f))
    .sort();
}

export async function retiredIdentityFindings(dir: string, retired: string[]): Promise<Finding[]> {
  const files = ageFilesIn(dir);
  const out: Finding[] = [];
  for (const file of files) {
    if ((await tryDecrypt(retired, fs.readFileSync(path.join(dir, file), 'utf8'))).ok) {
      out.push({
        level: 'error',
        check: 'retired-identity',
        file,
        message: 'the retired identity still opens this file: rekey it (trellis-root rekey / trellis-ci rekey)',
      });
    }
  }
  if (!out.length)
    out.push({
      level: 'ok',
      check: 'retired-identity',
      message:
        `the retired identity opens none of the ${files.length} key file(s) in the working tree (git history ` +
        `still holds older ciphertext)`,
    });
  return out;
}
