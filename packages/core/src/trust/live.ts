/**
 * The one answer to "which intermediates are live for this scope". Every
 * writer of bundles, the signer, the CRLs, recovery, revocation and verify ask
 * this function; nothing else lists a scope's intermediate slots.
 */
import { parseCertificate, type Certificate } from '../x509/certificates.js';
import { TrellisError } from '../model/errors.js';
import type { FileWrite } from '../model/file-write.js';
import { paths } from '../model/paths.js';
import type { Mesh, ScopeMaterial } from '../model/mesh.js';

/**
 * previous: being retired (switch phase); its leaves may still be live.
 * active:   signs new leaves.
 * next:     being introduced (publish phase); trusted, signs nothing yet.
 * old-root: the active key's certificate under the retiring root (root overlap).
 * standby: held for break-glass (trellis-ci activate-standby); trusted by no bundle, signs nothing.
 */
export type IntermediateRole = 'previous' | 'active' | 'next' | 'old-root' | 'standby';

export interface LiveIntermediate {
  role: IntermediateRole;
  cert: Certificate;
  /** Store path of its certificate. */
  file: string;
  /** Store path of its encrypted key (the old-root twin shares the active key). */
  keyFile: string;
  keyAge?: string;
  /** Bundles anchor on it. The old-root twin is not anchored: it has the active one's name and key. */
  anchored: boolean;
  /** Leaves it signed may be live, so it signs a leaf CRL. */
  issuing: boolean;
}

interface Slot {
  role: IntermediateRole;
  file: (s: string) => string;
  keyFile: (s: string) => string;
  cert: (m: ScopeMaterial) => Certificate | undefined;
  key: (m: ScopeMaterial) => string | undefined;
  anchored: boolean;
  issuing: boolean;
}

/** Oldest first, so a bundle's order does not change when signing switches. */
const SLOTS: readonly Slot[] = [
  {
    role: 'previous',
    file: paths.previousIntermediate,
    keyFile: paths.previousIntermediateKey,
    cert: (m) => m.previous,
    key: (m) => m.previousKeyAge,
    anchored: true,
    issuing: true,
  },
  {
    role: 'active',
    file: paths.intermediate,
    keyFile: paths.intermediateKey,
    cert: (m) => m.intermediate,
    key: (m) => m.keyAge,
    anchored: true,
    issuing: true,
  },
  {
    role: 'next',
    file: paths.nextIntermediate,
    keyFile: paths.nextIntermediateKey,
    cert: (m) => m.next,
    key: (m) => m.nextKeyAge,
    anchored: true,
    issuing: false,
  },
  {
    role: 'old-root',
    file: paths.oldRootIntermediate,
    keyFile: paths.intermediateKey,
    cert: (m) => m.oldRootIntermediate,
    key: (m) => m.keyAge,
    anchored: false,
    issuing: false,
  },
  {
    role: 'standby',
    file: paths.standbyIntermediate,
    keyFile: paths.standbyIntermediateKey,
    cert: (m) => m.standby,
    key: (m) => m.standbyKeyAge,
    anchored: false,
    issuing: false,
  },
];

/** Every store path that holds a scope's intermediate certificate or key. */
/** A scope's material, declared or awaiting its retire ceremony. */
export function materialOf(mesh: Mesh, scope: string): ScopeMaterial | undefined {
  return mesh.material.get(scope) ?? mesh.retired.get(scope);
}

export function intermediateFiles(scope: string): string[] {
  return [...new Set(SLOTS.flatMap((s) => [s.file(scope), s.keyFile(scope)]))];
}

/**
 * The scope's live intermediates, as the store holds them or, given `pending`
 * writes, as it will once they are applied (so a plan composes bundles from
 * what it is about to write, not from what it replaces).
 */
export function liveIntermediates(mesh: Mesh, scope: string, pending: readonly FileWrite[] = []): LiveIntermediate[] {
  const m = materialOf(mesh, scope);
  const staged = new Map(pending.map((w) => [w.path, w.content]));
  const out: LiveIntermediate[] = [];
  for (const slot of SLOTS) {
    const file = slot.file(scope);
    const keyFile = slot.keyFile(scope);
    let cert: Certificate | undefined;
    if (staged.has(file)) {
      const pem = staged.get(file);
      cert = pem ? parseStaged(pem, file) : undefined;
    } else cert = m ? slot.cert(m) : undefined;
    if (!cert) continue;
    const keyAge = staged.has(keyFile) ? (staged.get(keyFile) ?? undefined) : m ? slot.key(m) : undefined;
    out.push({ role: slot.role, cert, file, keyFile, keyAge, anchored: slot.anchored, issuing: slot.issuing });
  }
  return out;
}

function parseStaged(pem: string, file: string): Certificate {
  try {
    return parseCertificate(pem);
  } catch (e) {
    throw new TrellisError(
      'corrupt-store',
      `a planned write of ${file} is not a certificate (${(e as Error).message})`,
      { file },
    );
  }
}

/** The intermediates a scope's bundles anchor on. */
const anchorsOf = (live: LiveIntermediate[]): Certificate[] => live.filter((l) => l.anchored).map((l) => l.cert);

/** What a scope's crl.pem holds: which live intermediates sign a leaf CRL, and which an anchor CRL. */
export interface CrlSet {
  leaf: LiveIntermediate[];
  anchor: LiveIntermediate[];
}

/**
 * The one rule for a scope's CRL set. A leaf CRL from every intermediate whose
 * leaves may be live, and from every one a bundle anchors on even before it
 * signs its first leaf: a host a deploy behind holds the release published
 * then, and with full-chain CRL checking (nginx ssl_crl, haproxy crl-file)
 * it refuses a leaf whose issuer has no CRL in it. An anchor CRL from every
 * anchored one (see signAnchorCrl). The old-root twin shares the active key
 * and name, so the active's CRLs serve its chains too.
 */
export function crlSetOf(live: LiveIntermediate[]): CrlSet {
  return { leaf: live.filter((l) => l.issuing || l.anchored), anchor: live.filter((l) => l.anchored) };
}
/** The one live intermediate in `role`, if any. */
export const inRole = (live: LiveIntermediate[], role: IntermediateRole): LiveIntermediate | undefined =>
  live.find((l) => l.role === role);

/** `scope → anchors`, for composing every bundle of the mesh (now, or after `pending`). */
export function anchorsBy(mesh: Mesh, pending: readonly FileWrite[] = []): (scope: string) => Certificate[] {
  return (scope) => anchorsOf(liveIntermediates(mesh, scope, pending));
}
