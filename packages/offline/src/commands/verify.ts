import type { CommandModule } from 'yargs';
import { isTrellisError, paths, type Finding, type Mesh } from '@trellis/core';
import { verifyCommand } from '@trellis/core/shell';
import { openTokenKey, tokenPinGiven } from '../token.js';
import { rootIdentityFromShares } from '../ceremony-context.js';

/**
 * Shared with trellis-ci; here custody is proven with the offline root identity (or the one its shares
 * recombine), and a token root on its token.
 */
export const verify = verifyCommand('root', tokenCustody, rootIdentityFromShares) as unknown as CommandModule;

/**
 * With the token's PIN: each root whose key is on a token signs a fresh
 * challenge there, checked with its certificate's public key (openTokenKey).
 * Without a PIN there is nothing to prove with, as without an identity.
 */
async function tokenCustody(mesh: Mesh): Promise<Finding[]> {
  if (!tokenPinGiven()) return [];
  const out: Finding[] = [];
  for (const [cert, uri, file, certFile] of [
    [mesh.root, mesh.rootKeyUri, paths.rootKeyUri, paths.rootCert],
    [mesh.previousRoot, mesh.previousRootKeyUri, paths.rootPreviousKeyUri, paths.rootPrevious],
  ] as const) {
    if (!cert || uri === undefined) continue;
    try {
      openTokenKey(uri, cert, certFile);
      out.push({
        level: 'ok',
        check: 'custody',
        file,
        message: `the token key signs a fresh challenge that ${certFile}'s public key verifies: it is this root's key`,
      });
    } catch (e) {
      if (!isTrellisError(e)) throw e;
      out.push({
        level: 'error',
        check: 'custody',
        file,
        message: `the token does not prove this root key: ${e.message.split('\n')[0]}`,
      });
    }
  }
  return out;
}
