/**
 * The three certificate tiers as data, one function that turns a tier into
 * extensions, and one that checks a certificate against its tier. Minting and
 * verification both come here, so a profile rule lives in exactly one place.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { TrellisError } from '../model/errors.js';
import { ALL_IPS, namesOutside, type PermittedNames } from '../model/names.js';
import { decodeNameConstraints, nameConstraintsExtension, NAME_CONSTRAINTS_OID } from './name-constraints.js';
import { subjectAltNames, type Certificate } from './certificates.js';

export type Tier = 'root' | 'intermediate' | 'leaf';

export interface Profile {
  tier: Tier;
  ca: boolean;
  /** undefined: no path length limit. */
  pathLength?: number;
  keyUsage: x509.KeyUsageFlags;
  extendedKeyUsage: string[];
  nameConstraints: boolean;
  subjectAltName: boolean;
  authorityKeyId: boolean;
}

const EKU_SERVER = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT = '1.3.6.1.5.5.7.3.2';

export const PROFILES: Record<Tier, Profile> = {
  root: {
    tier: 'root',
    ca: true,
    keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    extendedKeyUsage: [],
    nameConstraints: false,
    subjectAltName: false,
    authorityKeyId: false,
  },
  intermediate: {
    tier: 'intermediate',
    ca: true,
    pathLength: 0,
    keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
    extendedKeyUsage: [],
    nameConstraints: true,
    subjectAltName: false,
    authorityKeyId: true,
  },
  leaf: {
    tier: 'leaf',
    ca: false,
    keyUsage: x509.KeyUsageFlags.digitalSignature,
    extendedKeyUsage: [EKU_SERVER, EKU_CLIENT],
    nameConstraints: false,
    subjectAltName: true,
    authorityKeyId: true,
  },
};

export interface ExtensionInputs {
  subjectPublicKey: CryptoKey;
  /** The issuer's public key, for the AKI; absent for a self-signed root. */
  issuerPublicKey?: CryptoKey | x509.PublicKey;
  permitted?: PermittedNames;
  sans?: { dns: string[]; uris: string[] };
}

/** The extensions of a certificate of `profile`'s tier. */
export async function extensionsFor(profile: Profile, inp: ExtensionInputs): Promise<x509.Extension[]> {
  const exts: x509.Extension[] = [
    new x509.BasicConstraintsExtension(profile.ca, profile.pathLength, true),
    new x509.KeyUsagesExtension(profile.keyUsage, true),
    await x509.SubjectKeyIdentifierExtension.create(inp.subjectPublicKey),
  ];
  if (profile.authorityKeyId) {
    if (!inp.issuerPublicKey) throw new Error(`${profile.tier} needs the issuer's public key`);
    exts.push(await x509.AuthorityKeyIdentifierExtension.create(inp.issuerPublicKey));
  }
  if (profile.extendedKeyUsage.length) exts.push(new x509.ExtendedKeyUsageExtension(profile.extendedKeyUsage, false));
  if (profile.nameConstraints) {
    if (!inp.permitted) throw new Error('an intermediate needs its permitted names');
    exts.push(nameConstraintsExtension(inp.permitted));
  }
  if (profile.subjectAltName) {
    if (!inp.sans) throw new Error('a leaf needs its SANs');
    // Non-critical: the subject is non-empty (RFC 5280 §4.2.1.6).
    exts.push(
      new x509.SubjectAlternativeNameExtension(
        [
          ...inp.sans.uris.map((v) => ({ type: 'url' as const, value: v })),
          ...inp.sans.dns.map((v) => ({ type: 'dns' as const, value: v })),
        ],
        false,
      ),
    );
  }
  return exts;
}

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** Backdating absorbs clock skew between the minting runner and peers. */
export const BACKDATE_MS = 60_000;

/** The last instant an X.509 GeneralizedTime can carry. */
const MAX_NOT_AFTER = new Date('9999-12-31T23:59:59Z');

/** The certificate a command signs with, as the signing-time check needs it. */
export interface SigningIssuer {
  label: string;
  notAfter: Date;
  notBefore: Date;
  /** The issuer's file, for the message. */
  file?: string;
  /** Whose key it is: 'root' for the root, 'intermediate' for a scope's. */
  tier?: 'root' | 'intermediate';
}

/**
 * DESIGN §7a: `now` (the clock or `--now`) must lie inside the validity of
 * every issuer a command signs with. Before it, the command would mint
 * certificates (or CRLs) older than their issuer; after it, the issuer vouches
 * for nothing. Every signing path of both CLIs calls this.
 */
export function assertSignsAt(issuer: SigningIssuer, now: Date): void {
  const place = issuer.file ? { file: issuer.file } : {};
  if (now < issuer.notBefore) {
    throw new TrellisError(
      'bad-time',
      `${now.toISOString()} is before ${issuer.label} became valid (${issuer.notBefore.toISOString()}): it ` +
        `cannot sign as of then`,
      {
        ...place,
        hint: "check the clock, and give --now only times inside the issuer's validity",
      },
    );
  }
  if (issuer.notAfter <= now) {
    throw new TrellisError('issuer-expiring', `issuer ${issuer.label} expired at ${issuer.notAfter.toISOString()}`, {
      ...place,
      hint:
        issuer.tier === 'root'
          ? 'the root has expired: a new mesh root is needed'
          : 'the scope needs a new intermediate: trellis-root recover SCOPE (it cannot be rotated with an ' +
            'overlap any more)',
    });
  }
}

/**
 * The validity of a new certificate of `ttl` at `now`, refused (never
 * truncated) when it would outlive its issuer.
 */
export function validityWithin(tier: Tier, now: Date, ttl: number, issuer?: SigningIssuer): Validity {
  const v = { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + ttl) };
  if (!Number.isFinite(ttl) || ttl <= 0 || Number.isNaN(v.notAfter.getTime()) || v.notAfter > MAX_NOT_AFTER) {
    throw new TrellisError(
      'bad-config',
      `a ${tier} valid for ${ttl} ms from ${now.toISOString()} cannot be encoded: a lifetime must be positive ` +
        `and end by 9999-12-31T23:59:59Z`,
      {
        hint: 'shorten the ttl (docs/input-limits.md); an expired certificate cannot be extended, only replaced',
      },
    );
  }
  if (issuer) assertSignsAt({ tier: tier === 'leaf' ? 'intermediate' : 'root', ...issuer }, now);
  if (issuer && v.notAfter > issuer.notAfter) {
    throw new TrellisError(
      'outlives-issuer',
      `a ${tier} valid until ${v.notAfter.toISOString()} would outlive its issuer ${issuer.label} (expires ` +
        `${issuer.notAfter.toISOString()})`,
      {
        ...(issuer.file ? { file: issuer.file } : {}),
        hint:
          tier === 'leaf'
            ? 'rotate the intermediate (trellis-root rotate intermediate SCOPE) or shorten the leaf ttl'
            : 'rotate the root first, or shorten defaults.ttl.intermediate',
      },
    );
  }
  return v;
}

/** The leaf renewal point: ⅓ of its life left. */
export function renewalPoint(v: Validity): Date {
  const life = v.notAfter.getTime() - v.notBefore.getTime();
  return new Date(v.notAfter.getTime() - Math.floor(life / 3));
}

/** Refuses SANs that the issuing intermediate may not certify. */
export function assertNamesInside(
  sans: { dns: string[]; uris: string[] },
  permitted: PermittedNames,
  scope: string,
): void {
  const outside = namesOutside(sans, permitted);
  if (outside.length) {
    throw new TrellisError(
      'name-outside-constraints',
      `${outside.join(', ')} outside the name constraints of scope ${scope}`,
      { hint: `names must fall under ${permitted.dns.join(', ')}` },
    );
  }
}

/** An intermediate minted before intermediates excluded every IP subtree: its key could certify any IP address. */
export function lacksIpExclusion(cert: Certificate): boolean {
  const nc = cert.extensions.find((e) => e.type === NAME_CONSTRAINTS_OID);
  return nc !== undefined && decodeNameConstraints(nc.value).excludedIps.length === 0;
}

/** Every way `cert` departs from its tier's profile; empty when it conforms. */
export function profileViolations(
  cert: Certificate,
  tier: Tier,
  expected: { permitted?: PermittedNames } = {},
): string[] {
  const p = PROFILES[tier];
  const out: string[] = [];
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc) out.push('no basicConstraints');
  else {
    if (bc.ca !== p.ca) out.push(`basicConstraints CA=${bc.ca}, want ${p.ca}`);
    if (!bc.critical) out.push('basicConstraints not critical');
    if (bc.pathLength !== p.pathLength) out.push(`pathLen ${bc.pathLength ?? 'none'}, want ${p.pathLength ?? 'none'}`);
  }
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (!ku) out.push('no keyUsage');
  else if (ku.usages !== p.keyUsage) out.push(`keyUsage ${ku.usages}, want ${p.keyUsage}`);
  if (!cert.getExtension(x509.SubjectKeyIdentifierExtension)) out.push('no subjectKeyIdentifier');
  if (p.authorityKeyId && !cert.getExtension(x509.AuthorityKeyIdentifierExtension))
    out.push('no authorityKeyIdentifier');
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const ekus = (eku?.usages ?? []).map(String).sort();
  if (ekus.join() !== [...p.extendedKeyUsage].sort().join())
    out.push(`extendedKeyUsage [${ekus}], want [${p.extendedKeyUsage}]`);
  const nc = cert.extensions.find((e) => e.type === NAME_CONSTRAINTS_OID);
  if (p.nameConstraints) {
    if (!nc) out.push('no nameConstraints');
    else {
      if (!nc.critical) out.push('nameConstraints not critical');
      const got = decodeNameConstraints(nc.value);
      const want = expected.permitted;
      if (got.otherExcluded || got.otherPermitted) out.push('nameConstraints carry subtrees trellis does not write');
      // Intermediates minted before the IP exclusion carry none: verify warns about those (lacksIpExclusion), it is no
      // error.
      if (got.excludedIps.length && got.excludedIps.join() !== ALL_IPS.join())
        out.push(`nameConstraints exclude IP [${got.excludedIps}], want [${ALL_IPS}]`);
      if (want && (got.dns.join() !== want.dns.join() || got.uriHosts.join() !== want.uriHosts.join())) {
        out.push(
          `nameConstraints permit DNS [${got.dns}] URI [${got.uriHosts}], want DNS [${want.dns}] URI ` +
            `[${want.uriHosts}]`,
        );
      }
    }
  } else if (nc) out.push('unexpected nameConstraints');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (p.subjectAltName) {
    const names = subjectAltNames(cert);
    if (!san) out.push('no subjectAltName');
    else if (san.critical) out.push('subjectAltName critical with a non-empty subject');
    if (names.uris.length !== 1) out.push(`${names.uris.length} URI SANs, want exactly one SPIFFE ID`);
    if (names.other)
      out.push(
        `${names.other} SAN(s) that are neither DNS names nor URIs (IP addresses, email...): trellis certifies neither`,
      );
    if (expected.permitted) {
      const outside = namesOutside(names, expected.permitted);
      if (outside.length) out.push(`SANs outside the scope: ${outside.join(', ')}`);
    }
  }
  return out;
}
