/** A rotation's effects (rotation.ts) as the writes that make a scope's files hold them. */
import type { FileWrite } from '../model/file-write.js';
import type { Mesh } from '../model/mesh.js';
import { paths } from '../model/paths.js';
import { type Certificate, certificatePem } from '../x509/certificates.js';
import type { ScopeEffect } from './rotation.js';

/** The writes that make the scope's files hold `effects` (see rotation.ts). */
export function effectWrites(
  mesh: Mesh,
  scope: string,
  effects: ScopeEffect[],
  fresh?: { pem: string; keyAge: string },
): FileWrite[] {
  const m = mesh.material.get(scope)!;
  const pem = (c?: Certificate) => (c ? certificatePem(c) : null);
  const out: FileWrite[] = [];
  const put = (path: string, content: string | null | undefined) => out.push({ path, content: content ?? null });
  for (const e of effects) {
    switch (e) {
      case 'stage-next':
        put(paths.nextIntermediate(scope), fresh!.pem);
        put(paths.nextIntermediateKey(scope), fresh!.keyAge);
        break;
      case 'promote-next':
        put(paths.previousIntermediate(scope), pem(m.intermediate));
        put(paths.previousIntermediateKey(scope), m.keyAge);
        put(paths.intermediate(scope), pem(m.next));
        put(paths.intermediateKey(scope), m.nextKeyAge);
        put(paths.nextIntermediate(scope), null);
        put(paths.nextIntermediateKey(scope), null);
        put(paths.oldRootIntermediate(scope), null);
        break;
      case 'retire-previous':
        put(paths.previousIntermediate(scope), null);
        put(paths.previousIntermediateKey(scope), null);
        break;
      case 'drop-next':
        put(paths.nextIntermediate(scope), null);
        put(paths.nextIntermediateKey(scope), null);
        break;
      case 'swap-previous':
        put(paths.intermediate(scope), pem(m.previous));
        put(paths.intermediateKey(scope), m.previousKeyAge);
        put(paths.previousIntermediate(scope), pem(m.intermediate));
        put(paths.previousIntermediateKey(scope), m.keyAge);
        put(paths.oldRootIntermediate(scope), null);
        break;
      case 'replace-all':
        put(paths.intermediate(scope), fresh!.pem);
        put(paths.intermediateKey(scope), fresh!.keyAge);
        for (const p of [
          paths.nextIntermediate,
          paths.nextIntermediateKey,
          paths.previousIntermediate,
          paths.previousIntermediateKey,
          paths.oldRootIntermediate,
        ])
          put(p(scope), null);
        break;
    }
  }
  return out; // removing a file that is absent is a no-op in Store.commit
}
