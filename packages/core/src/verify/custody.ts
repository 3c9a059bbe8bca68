/** What an identity proves about custody, beyond what the store shows without secrets. */
import { keyMatchesCert } from '../x509/certificates.js';
import { tryDecrypt } from '../custody/custody.js';
import { liveIntermediates } from '../trust/live.js';
import { ciKeyFiles, ciScopeCustodyFindings, confirmedCiCustody } from '../custody/scope-custody.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import type { Finding } from './finding.js';

/**
 * What an identity proves about custody. With the CI identity: every
 * intermediate key opens and matches its certificate, and the root key does
 * not open. With the root identity: the root key opens and matches, and no
 * intermediate key opens.
 */
export async function custodyFindings(
  mesh: Mesh,
  ids: { ci?: string[]; root?: string[]; breakglass?: string[] },
): Promise<Finding[]> {
  const out: Finding[] = [];
  const open = async (who: string[], ct: string | undefined) => (ct === undefined ? undefined : tryDecrypt(who, ct));
  // Each key file once (the old-root twin shares the active key).
  const keys = [...mesh.material.keys()].flatMap((scope) => ciKeyFiles(mesh, scope).map((k) => ({ scope, ...k })));
  // Standby keys are the break-glass party's: CI must not open them.
  const standbys = [...mesh.material.keys()].flatMap((scope) =>
    liveIntermediates(mesh, scope)
      .filter((l) => l.role === 'standby' && l.keyAge !== undefined)
      .map((l) => ({ scope, file: l.keyFile, ct: l.keyAge })),
  );
  for (const [who, id] of [
    ['CI', ids.ci],
    ['root', ids.root],
  ] as const) {
    for (const k of id ? standbys : []) {
      if ((await open(id!, k.ct))?.ok)
        out.push({
          level: 'error',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message: `the ${who} identity opens this standby key: it must be encrypted to the break-glass recipient only`,
        });
    }
  }
  // With the break-glass identity: every standby key opens and matches, and it opens nothing else.
  if (ids.breakglass) {
    const bg = ids.breakglass;
    for (const k of standbys) {
      const cert = [...mesh.material.entries()].find(([s]) => s === k.scope)![1].standby!;
      const r = (await open(bg, k.ct))!;
      if (!r.ok)
        out.push({
          level: 'error',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message: 'the break-glass identity does not open this standby key',
        });
      else if (!keyMatchesCert(r.text, cert))
        out.push({
          level: 'error',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message: 'the standby key does not match its certificate',
        });
      else
        out.push({
          level: 'ok',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message: 'standby key opens with the break-glass identity and matches its certificate',
        });
    }
    for (const [ct, file] of [[mesh.rootKeyAge, paths.rootKey], ...keys.map((k) => [k.ct, k.file] as const)] as const) {
      if ((await open(bg, ct))?.ok)
        out.push({
          level: 'error',
          check: 'custody',
          file,
          message: 'the break-glass identity opens this key: it must open standby keys only',
        });
    }
  }
  if (ids.ci) {
    if ((await open(ids.ci, mesh.rootKeyAge))?.ok) {
      out.push({
        level: 'error',
        check: 'custody',
        file: paths.rootKey,
        message: 'the CI identity opens the root key: the root key is exposed to CI; rotate the root',
      });
    } else if (mesh.rootKeyAge !== undefined)
      out.push({
        level: 'ok',
        check: 'custody',
        file: paths.rootKey,
        message: 'the CI identity cannot open the root key',
      });
    // Scopes with their own CI recipient: each key must open with its scope's identity and no other (scope-custody.ts).
    if (Object.keys(confirmedCiCustody(mesh).scopes).length) {
      out.push(...(await ciScopeCustodyFindings(mesh, ids.ci)));
    }
    for (const k of Object.keys(confirmedCiCustody(mesh).scopes).length ? [] : keys) {
      const r = (await open(ids.ci, k.ct))!;
      if (!r.ok)
        out.push({
          level: 'error',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message:
            r.why === 'malformed'
              ? 'this intermediate key file is not readable age ciphertext'
              : 'the CI identity does not open this intermediate key',
        });
      else if (!keyMatchesCert(r.text, k.cert!))
        out.push({
          level: 'error',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message: 'the intermediate key does not match its certificate',
        });
      else
        out.push({
          level: 'ok',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message: 'intermediate key opens with the CI identity and matches its certificate',
        });
    }
  }
  if (ids.root) {
    for (const [cert, ct, file, uri] of [
      [mesh.root, mesh.rootKeyAge, paths.rootKey, mesh.rootKeyUri],
      [mesh.previousRoot, mesh.previousRootKeyAge, paths.rootPreviousKey, mesh.previousRootKeyUri],
    ] as const) {
      // A root on a token has no key file to open: trellis-root verify proves it on the token.
      if (!cert || (ct === undefined && uri !== undefined)) continue;
      const r = await open(ids.root, ct);
      if (!r?.ok)
        out.push({ level: 'error', check: 'custody', file, message: 'the root identity does not open this root key' });
      else if (!keyMatchesCert(r.text, cert))
        out.push({ level: 'error', check: 'custody', file, message: 'the root key does not match its certificate' });
      else
        out.push({
          level: 'ok',
          check: 'custody',
          file,
          message: 'root key opens with the offline identity and matches its certificate',
        });
    }
    for (const k of keys) {
      if ((await open(ids.root, k.ct))?.ok) {
        out.push({
          level: 'error',
          check: 'custody',
          scope: k.scope,
          file: k.file,
          message: 'the root identity opens this intermediate key: it must be encrypted to the CI recipient only',
        });
      }
    }
  }
  return out;
}
