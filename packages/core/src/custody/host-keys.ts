/**
 * Keys held by their hosts (`key: host`): which request renew may sign for a
 * service. A request is hostile input from a pull request: it must prove
 * possession, carry a key of the mesh's leaf algorithm, and name a key no
 * other service and no CA holds (docs/host-keys.md).
 */
import { TrellisError } from '../model/errors.js';
import { paths } from '../model/paths.js';
import type { Mesh } from '../model/mesh.js';
import { keyId, type Certificate } from '../x509/certificates.js';
import { readCertificateRequest, type HostKeyRequest } from '../x509/csr.js';
import { sha256Hex, verifyBytes } from '../crypto/crypto.js';
import { lastConfirmedRecord, scopeLedgerTrust } from '../ledger/ledger-trust.js';

/** A `key: host` service renew holds because its key does not count yet (`why` says which rule). */
export interface HostKeyHold {
  scope: string;
  service: string;
  why: string;
}

/** `<scope>/<service>`: how a host-held key is named in messages and maps. */
const held = (scope: string, service: string) => `${scope}/${service}`;

/** Every CA key of the mesh (roots and each scope's intermediates in any slot), by keyId. */
function caKeys(mesh: Mesh): Map<string, string> {
  const out = new Map<string, string>();
  const add = (c: Certificate | undefined, what: string) => {
    if (c) out.set(keyId(c), what);
  };
  add(mesh.root, 'the root CA');
  add(mesh.previousRoot, 'the previous root CA');
  for (const r of mesh.roots) add(r, 'a root CA');
  for (const [scope, m] of [...mesh.material, ...mesh.retired])
    for (const c of [m.intermediate, m.next, m.previous, m.standby, m.oldRootIntermediate])
      add(c, `the ${scope} intermediate CA`);
  return out;
}

/**
 * The checked request of every `key: host` service of `scopes`, by `<scope>/<service>`; refuses (bad-scope, exit 2)
 * a missing, malformed or unproven request, a key of another algorithm, or a key another service or a CA holds.
 */
export async function hostKeyRequests(mesh: Mesh, scopes: string[]): Promise<Map<string, HostKeyRequest>> {
  const read = await checkedRequests(mesh, scopes);
  return new Map([...read].filter(([name]) => scopes.includes(name.split('/')[0]!)));
}

/**
 * What `trellis-root confirm` records: every committed request of the mesh, checked as renew checks them, each with
 * how it stands now.
 */
export async function meshHostKeys(mesh: Mesh): Promise<{ name: string; key: string; standing: HostKeyStanding }[]> {
  return [...(await checkedRequests(mesh, []))].map(([name, r]) => {
    const [scope, service] = name.split('/') as [string, string];
    return { name, key: r.keyId, standing: hostKeyStanding(mesh, scope, service, r.keyId) };
  });
}

/** Every committed request of the mesh, checked; a missing one is refused only in `required` scopes. */
async function checkedRequests(mesh: Mesh, required: string[]): Promise<Map<string, HostKeyRequest>> {
  const read = new Map<string, HostKeyRequest>();
  // Every request of the mesh is read: a key reused across scopes is refused whichever scope renews.
  for (const def of mesh.scopes) {
    const m = mesh.material.get(def.name)!;
    for (const svc of def.services) {
      if (svc.key !== 'host') continue;
      const file = paths.csr(def.name, svc.name);
      const pem = m.csrs.get(svc.name);
      if (pem === undefined) {
        if (!required.includes(def.name)) continue;
        throw new TrellisError('bad-scope', `${held(def.name, svc.name)} has key: host but no certificate request`, {
          file,
          hint:
            `on the host, run trellis-agent keygen ${svc.name} (or the openssl recipe in docs/host-keys.md) and ` +
            `commit the CSR it prints`,
        });
      }
      try {
        read.set(held(def.name, svc.name), await readCertificateRequest(pem));
      } catch (e) {
        throw new TrellisError('bad-scope', (e as Error).message, {
          file,
          hint: 'commit the PEM CSR the host printed, unchanged',
        });
      }
    }
  }
  const cas = caKeys(mesh);
  const owners = new Map<string, string>();
  for (const [name, r] of read) {
    const [scope, service] = name.split('/') as [string, string];
    const file = paths.csr(scope, service);
    const want = mesh.config.algorithms.leaf;
    if (r.algorithm !== want)
      throw new TrellisError(
        'bad-scope',
        `carries ${r.algorithm ? `an ${r.algorithm}` : 'a kind of'} key; this mesh's leaves are ${want}`,
        { file, hint: `make the host key ${want} (trellis.yaml defaults.algorithms.leaf) and commit its CSR` },
      );
    if (!r.possessed)
      throw new TrellisError(
        'bad-scope',
        'its signature does not verify with the key it carries: nothing proves the requester holds that key',
        { file, hint: 'commit the CSR exactly as the host made it' },
      );
    const ca = cas.get(r.keyId);
    const other = owners.get(r.keyId);
    if (ca || other)
      throw new TrellisError('bad-scope', `carries ${r.keyId}, the key of ${ca ?? other}`, {
        file,
        hint: 'each host-held service needs its own key: generate a new one on the host',
      });
    owners.set(r.keyId, name);
  }
  return read;
}

/** What a key rotation's proof signs: the new key bound to the mesh, scope, service and purpose. */
export function keyProofStatement(mesh: string, scope: string, service: string, newKey: string): string {
  return `trellis host key rotation\nmesh: ${mesh}\nscope: ${scope}\nservice: ${service}\nnew key: ${newKey}\n`;
}

/**
 * The keys each host-held service's leaves were signed for, oldest first, as the scope's counted ledger records them.
 */
export function hostKeyHistory(mesh: Mesh, scope: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of scopeLedgerTrust(mesh, scope).counted) {
    const keys = e.details?.hostKeys;
    if (!keys || typeof keys !== 'object') continue;
    for (const [svc, k] of Object.entries(keys))
      if (typeof k === 'string' && out.get(svc)?.at(-1) !== k) out.set(svc, [...(out.get(svc) ?? []), k]);
  }
  return out;
}

/** The most a host-held key should serve before its host rotates it (`check` warns past it; docs/host-keys.md). */
export const HOST_KEY_MAX_AGE_MS = 90 * 86_400_000;

/**
 * Each host-held service's current key and since when a leaf was first signed for it (the scope ledger's entry), by
 * service: the key's age as `check` and the metrics report it.
 */
export function hostKeySince(mesh: Mesh, scope: string): Map<string, { key: string; since: Date }> {
  const out = new Map<string, { key: string; since: Date }>();
  for (const e of scopeLedgerTrust(mesh, scope).counted) {
    const keys = e.details?.hostKeys;
    if (!keys || typeof keys !== 'object') continue;
    for (const [svc, k] of Object.entries(keys))
      if (typeof k === 'string' && out.get(svc)?.key !== k) out.set(svc, { key: k, since: new Date(e.at) });
  }
  return out;
}

/** The host keys `trellis-ci revoke` revoked, by service, as the scope's counted ledger records them. */
function revokedHostKeys(mesh: Mesh, scope: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of scopeLedgerTrust(mesh, scope).counted) {
    const { service, revokedHostKey: key } = e.details ?? {};
    if (e.op === 'revoke' && typeof service === 'string' && typeof key === 'string')
      out.set(service, [...(out.get(service) ?? []), key]);
  }
  return out;
}

/** The host keys the custodian last confirmed (`trellis-root confirm`), by `<scope>/<service>`. */
function confirmedHostKeys(mesh: Mesh): Map<string, string> {
  const keys = lastConfirmedRecord(mesh, 'hostKeys')?.hostKeys;
  if (!keys || typeof keys !== 'object') return new Map();
  return new Map(Object.entries(keys).filter((x): x is [string, string] => typeof x[1] === 'string'));
}

/** Whether a key counts for its service, and how; or why it does not (renew holds the service, exit 3). */
export type HostKeyStanding =
  | { counts: true; how: 'signed before' | 'confirmed' | 'proven' }
  | { counts: false; why: string; current?: string };

/** The proof in key-proof.json holds when the current key signed the statement for `newKey`. */
function proofHolds(mesh: Mesh, scope: string, service: string, newKey: string, current: string): boolean {
  const text = mesh.material.get(scope)?.keyProofs.get(service);
  if (text === undefined) return false;
  let proof: { currentKey?: unknown; signature?: unknown };
  try {
    proof = JSON.parse(text) as typeof proof;
  } catch {
    return false;
  }
  if (typeof proof?.currentKey !== 'string' || typeof proof.signature !== 'string') return false;
  const spki = Buffer.from(proof.currentKey, 'base64');
  if (`sha256:${sha256Hex(spki)}` !== current) return false;
  const statement = Buffer.from(keyProofStatement(mesh.config.mesh, scope, service, newKey));
  try {
    return verifyBytes(spki, statement, Buffer.from(proof.signature, 'base64'));
  } catch {
    return false; // not a public key
  }
}

/**
 * Every key a pull request introduces is a custody event: a host-held key counts when a leaf was already signed for
 * it, when the custodian confirmed it, or (a changed key) with a proof from the current key.
 */
export function hostKeyStanding(mesh: Mesh, scope: string, service: string, key: string): HostKeyStanding {
  const history = hostKeyHistory(mesh, scope).get(service) ?? [];
  const revoked = revokedHostKeys(mesh, scope).get(service) ?? [];
  const current = history.at(-1);
  if (revoked.includes(key))
    return {
      counts: false,
      why: `its key ${key} was revoked (trellis-ci revoke): the host needs a new key, confirmed by a custodian`,
      current,
    };
  if (current === key) return { counts: true, how: 'signed before' };
  // A key rotated out never comes back: a confirmation still naming it would let a pull request roll it back in.
  if (history.includes(key))
    return { counts: false, why: `its key ${key} was rotated out (the current one is ${current})`, current };
  if (confirmedHostKeys(mesh).get(held(scope, service)) === key) return { counts: true, how: 'confirmed' };
  if (current === undefined) return { counts: false, why: `its first key ${key} is not yet confirmed by a custodian` };
  // A revoked key proves nothing: its thief could sign the proof.
  if (!revoked.includes(current) && proofHolds(mesh, scope, service, key, current))
    return { counts: true, how: 'proven' };
  return {
    counts: false,
    why: `its key changed from ${current} to ${key} with neither a proof from the current key nor a confirmation`,
    current,
  };
}

/** The refusal (exit 3) naming each service renew held for its key's custody, or undefined. */
export function custodyRefusal(custody: HostKeyHold[], lead: string): TrellisError | undefined {
  if (!custody.length) return undefined;
  return new TrellisError(
    'custody-not-confirmed',
    `${lead} ${custody.map((h) => `${h.scope}/${h.service} (${h.why})`).join('; ')}`,
    {
      file: paths.csr(custody[0]!.scope, custody[0]!.service),
      hint:
        'a custodian reviews the CSR and records it with trellis-root confirm; a rotation commits the ' +
        'key-proof.json trellis-agent keygen --rotate wrote (docs/host-keys.md)',
    },
  );
}
