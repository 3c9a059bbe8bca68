/**
 * The shape of a mesh: its scopes and services, read from the real store with
 * the parsers the store itself uses, and nothing else (no key, no record).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { GLOBAL_SCOPE, TrellisError, parseMeshConfig, parseScope, type ScopeDef } from '@trellis/core';
import { findStore } from '@trellis/core/store';

export interface MeshShape {
  mesh: string;
  trustDomain: string;
  /** trellis.yaml's `defaults:` as written (TTLs, overlap, algorithms), so the rehearsal runs on the real gates. */
  defaults: unknown;
  scopes: ScopeDef[];
  /** The mesh's default leaf lifetime (ms), for services that declare none. */
  leafTtl: number;
  /** Regions the drill added because the checklist needs one to refuse (empty when the mesh has enough). */
  added: string[];
}

export function readShape(storeFlag: string | undefined): MeshShape {
  const dir = findStore(process.cwd(), storeFlag ?? (process.env.TRELLIS_STORE || undefined));
  const configText = fs.readFileSync(path.join(dir, 'trellis.yaml'), 'utf8');
  const config = parseMeshConfig(configText);
  const scopes = fs
    .readdirSync(path.join(dir, 'scopes'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parseScope(fs.readFileSync(path.join(dir, 'scopes', f), 'utf8'), f.slice(0, -5), config.trustDomain));
  return {
    mesh: config.mesh,
    trustDomain: config.trustDomain,
    defaults: (parse(configText) as { defaults?: unknown }).defaults,
    scopes,
    leafTtl: config.ttl.leaf,
    added: [],
  };
}

/**
 * The shape the rehearsal runs on: the mesh's own, plus throwaway regions
 * where the validation checklist needs another region to refuse (one beside
 * a rehearsed region, two beside the global scope, which trusts them all).
 */
export function rehearsalShape(shape: MeshShape, scope: string): MeshShape {
  const target = shape.scopes.find((s) => s.name === scope);
  if (!target) {
    throw new TrellisError('unknown-scope', `no scope ${scope} in this store`, {
      file: `scopes/${scope}.yaml`,
      hint: `scopes: ${shape.scopes.map((s) => s.name).join(', ')}`,
    });
  }
  if (!target.services.length)
    throw new TrellisError('usage', `scope ${scope} declares no service: there is nothing to handshake with`, {
      file: `scopes/${scope}.yaml`,
      field: 'services',
    });
  const others = shape.scopes.filter((s) => s.kind === 'region' && s.name !== scope && s.services.length);
  const needed = (scope === GLOBAL_SCOPE ? 2 : 1) - others.length;
  const added: ScopeDef[] = [];
  for (let i = 1; added.length < needed; i++) {
    const name = `drill-region-${i}`;
    if (!shape.scopes.some((s) => s.name === name))
      added.push({ name, kind: 'region', services: [{ name: 'probe', dns: [], deploy: [] }] });
  }
  return { ...shape, scopes: [...shape.scopes, ...added], added: added.map((s) => s.name) };
}
