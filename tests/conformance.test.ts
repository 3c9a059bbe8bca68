/**
 * Cross-verifier conformance: one table of chains, each judged by OpenSSL, Go,
 * NSS, GnuTLS and Node TLS as a deployed us-east-1 service (or a root-anchored
 * consumer) would judge it. A cell passes when the verifier's verdict is the
 * table's, or the opposite where the row declares that verifier's divergence
 * and why; a divergence that goes away fails too. docs/conformance.md holds the
 * same table as a matrix, and a test keeps the two equal.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  anchorCrlOf,
  parseCertificate,
  parseCrls,
  pemEncode,
  permittedNamesFor,
  releaseFor,
  type Certificate,
} from '@trellis/core';
import { Store, loadMesh } from '@trellis/core/store';
import { REPO } from './helpers/cli.js';
import { FakeMesh } from './helpers/fake-mesh.js';
import { freePort } from './helpers/servers.js';
import { PROFILES, forgeCertificate, forgeLeafCrl, openCa, type KeyPair } from './helpers/forge-chain.js';
import {
  JVM_VERIFIERS,
  VERIFIERS,
  VERIFIER_LABEL,
  Verifiers,
  type Presented,
  type Purpose,
  type Trust,
  type Verdict,
  type Verifier,
} from './helpers/verifiers.js';

const DAY = 86_400_000;
const EKU_SERVER = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT = '1.3.6.1.5.5.7.3.2';
const KU_KEY_ENCIPHERMENT = 4;
const KU_CRL_SIGN = 64;

/** What the rows build from: a real store, its CAs opened, and leaves the real CLIs minted. */
interface World {
  m: FakeMesh;
  now: Date;
  region: KeyPair;
  root: KeyPair;
  /** The judge's own leaf, for its side of a Node handshake. */
  peer: Record<Anchor, Presented>;
  leaf(scope: string, service: string, outDir?: string): Presented;
  expiredOut: string;
  futureOut: string;
  revoked: Presented;
}

type Anchor = 'region' | 'global' | 'root';

/** A chain as a row presents it, and any CRLs its forged CAs publish. */
interface Built {
  presented: Presented;
  crls?: string[];
}

interface Row {
  /** The case, in a sentence. */
  name: string;
  purpose: Purpose;
  /**
   * Who judges: `region` a us-east-1 service, `global` a global service (it
   * trusts every scope's intermediate), each with the trust bundle and CRLs
   * deploy ships it; `root` a consumer outside the mesh anchored on roots.pem.
   */
  anchor: Anchor;
  accepted: boolean;
  /** Why the table refuses it: each verifier's refusal must say so in its own words (REASONS). */
  refusedFor?: Refusal;
  /** Verifiers that give the opposite verdict, each with why, in a line. */
  diverges?: Partial<Record<Verifier, string>>;
  build(w: World): Promise<Built>;
}

type Refusal =
  | 'unknown issuer'
  | 'name constraints'
  | 'path length'
  | 'purpose'
  | 'expired'
  | 'not yet valid'
  | 'revoked'
  | 'leaf key usage'
  | 'CA key usage';

/**
 * How each verifier words each refusal, so a cell cannot pass by refusing for
 * another reason (a stale CRL, a broken forgery). Node reports OpenSSL's last
 * error: with CRLs loaded, a chain to an unknown issuer ends in "no CRL" for it,
 * and Node 20 has no name for errors 47 (subtree violation) and 79 (invalid CA).
 */
const REASONS: Record<Verifier, Partial<Record<Refusal, RegExp>>> = {
  openssl: {
    'unknown issuer': /^error 20 /,
    'name constraints': /^error 47 /,
    'path length': /^error 25 /,
    purpose: /^error 26 /,
    expired: /^error 10 /,
    'not yet valid': /^error 9 /,
    revoked: /^error 23 /,
    'leaf key usage': /^error 26 /,
    'CA key usage': /^error 79 /,
  },
  go: {
    'unknown issuer': /signed by unknown authority$/,
    'name constraints': /is not permitted by any constraint/,
    'path length': /too many intermediates/,
    purpose: /incompatible key usage/,
    expired: /current time \S+ is after/,
    'not yet valid': /current time \S+ is before/,
    'CA key usage': /parent certificate cannot sign/,
  },
  nss: {
    'unknown issuer': /^ERROR -8179:/,
    'name constraints': /^ERROR -8080:/,
    'path length': /^ERROR -8155:/,
    purpose: /^ERROR -8101:/,
    expired: /^ERROR -8181:/,
    // NSS reports a certificate not valid yet as expired (one error code for both).
    'not yet valid': /^ERROR -8181:/,
    revoked: /^ERROR -8180:/,
    'leaf key usage': /^ERROR -8102:/,
    'CA key usage': /^ERROR -8102:/,
  },
  gnutls: {
    'unknown issuer': /issuer is unknown/,
    'name constraints': /violates the signer's constraints/,
    'path length': /violates the signer's constraints/,
    purpose: /does not match the intended purpose/,
    expired: /uses expired certificate/,
    'not yet valid': /uses not yet valid certificate/,
    revoked: /chain is revoked/,
    'CA key usage': /violates the signer's constraints/,
  },
  node: {
    'unknown issuer': /: UNABLE_TO_GET_CRL$/,
    'name constraints': /: UNSPECIFIED$/,
    'path length': /: PATH_LENGTH_EXCEEDED$/,
    purpose: /: INVALID_PURPOSE$/,
    expired: /: CERT_HAS_EXPIRED$/,
    'not yet valid': /: CERT_NOT_YET_VALID$/,
    revoked: /: CERT_REVOKED$/,
    'leaf key usage': /: INVALID_PURPOSE$/,
    'CA key usage': /: UNSPECIFIED$/,
  },
  pkix: {
    'unknown issuer': /\[NO_TRUST_ANCHOR\]/,
    'name constraints': /\[INVALID_NAME\]/,
    expired: /\[EXPIRED\]/,
    'not yet valid': /\[NOT_YET_VALID\]/,
    revoked: /\[REVOKED\]/,
    'CA key usage': /\[INVALID_KEY_USAGE\]/,
  },
  jsse: {
    // The client's key manager sends no certificate whose issuer the server's CertificateRequest does not list.
    'unknown issuer': /^SSLHandshakeException: Empty client certificate chain/,
    'name constraints': /\[INVALID_NAME\]/,
    purpose: /Extended key usage does not permit use for TLS (client|server) authentication/,
    expired: /\[EXPIRED\]/,
    'not yet valid': /\[NOT_YET_VALID\]/,
    revoked: /\[REVOKED\]/,
    'leaf key usage': /KeyUsage does not allow digital signatures/,
    'CA key usage': /\[INVALID_KEY_USAGE\]/,
  },
  // Botan 2 refuses every row before it reaches the row's question: BOTAN_REFUSES.
  botan: {},
};

/**
 * Botan 2.19 builds no path for any trellis chain: it ends a path only at a self-signed certificate, so a
 * bundle's intermediates anchor nothing, and anchored on the root it cannot decode the intermediates' `::/0`
 * exclusion, which leaves their critical name constraints an unknown critical extension. Each cell of its column
 * is a refusal in these words, whatever the row asks (docs/conformance.md, "Botan").
 */
const BOTAN_REFUSES: Record<Anchor, RegExp> = {
  region: /Certificate issuer not found$/,
  global: /Certificate issuer not found$/,
  root: /Unknown critical extension encountered$/,
};
const BOTAN_NO_PATH =
  "Botan 2 ends a path only at a self-signed certificate: the bundle's intermediates anchor nothing (issuer not found)";
const BOTAN_NO_NC =
  "Botan 2 cannot decode the intermediates' ::/0 exclusion, so their critical name constraints are an unknown " +
  'critical extension';
const JAVA_ANCHOR_NC =
  "Java does not apply a trust anchor's name constraints, and the scope's intermediate is the anchor here: " +
  "docs/jvm.md's scope check refuses it";
const JAVA_ANCHOR_PATHLEN =
  "Java does not apply a trust anchor's basic constraints either: the anchor's pathLen 0 does not bind the " +
  'sub-CA under it';
const PKIX_NO_EKU =
  'CertPathValidator checks no extended key usage: the application (JSSE, the next column) checks it for TLS';
const PKIX_NO_LEAF_KU =
  'CertPathValidator checks no leaf key usage (keyCertSign on CAs only): JSSE checks it for TLS, the next column';

/** A leaf the thief of `issuer`'s key could mint: trellis's leaf profile unless `profile` changes a field. */
async function forgedLeaf(
  w: World,
  issuer: KeyPair,
  sans: { dns: string[]; uris: string[] },
  profile = PROFILES.leaf,
): Promise<Presented> {
  const leaf = await forgeCertificate(issuer, {
    subject: `CN=${sans.dns[0]}`,
    profile,
    sans,
    notBefore: new Date(w.now.getTime() - 60_000),
    notAfter: new Date(w.now.getTime() + DAY),
  });
  return { cert: leaf.cert, key: leaf.key, chain: leaf.cert + issuer.cert };
}

const INSIDE = { dns: ['x.us-east-1.mesh.example'], uris: ['spiffe://us-east-1.mesh.example/x'] };

/** An intermediate the root signed for us-east-1 with `keyUsage`, and an in-scope leaf under it. */
async function rootSignedIntermediate(w: World, label: string, keyUsage: number): Promise<Built> {
  const ca = await forgeCertificate(w.root, {
    subject: `O=test, OU=us-east-1, CN=${label}`,
    profile: { ...PROFILES.intermediate, keyUsage },
    permitted: permittedNamesFor('us-east-1', 'mesh.example'),
    notBefore: new Date(w.now.getTime() - 60_000),
    notAfter: new Date(w.now.getTime() + 30 * DAY),
  });
  return { presented: await forgedLeaf(w, ca, INSIDE), crls: [await forgeLeafCrl(ca, w.now)] };
}

const GNUTLS_URI =
  'GnuTLS 3.7 does not enforce URI name constraints: only the DNS constraint holds this boundary for it';

const ROWS: Row[] = [
  {
    name: 'a leaf of the scope, presented as a client',
    purpose: 'client',
    anchor: 'region',
    accepted: true,
    diverges: { botan: BOTAN_NO_PATH },
    build: async (w) => ({ presented: w.leaf('us-east-1', 'api') }),
  },
  {
    name: 'a leaf of the scope, presented as a server',
    purpose: 'server',
    anchor: 'region',
    accepted: true,
    diverges: { botan: BOTAN_NO_PATH },
    build: async (w) => ({ presented: w.leaf('us-east-1', 'api') }),
  },
  {
    name: 'a leaf of the global scope, which every region trusts',
    purpose: 'client',
    anchor: 'region',
    accepted: true,
    diverges: { botan: BOTAN_NO_PATH },
    build: async (w) => ({ presented: w.leaf('global', 'control') }),
  },
  {
    name: "a leaf of another region, against this region's bundle",
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'unknown issuer',
    build: async (w) => ({ presented: w.leaf('eu-west-1', 'api') }),
  },
  {
    name:
      "a leaf forged with the scope's intermediate key, inside its name constraints (the control for the " +
      'forgeries)',
    purpose: 'client',
    anchor: 'region',
    accepted: true,
    diverges: { botan: BOTAN_NO_PATH },
    build: async (w) => ({ presented: await forgedLeaf(w, w.region, INSIDE) }),
  },
  {
    name: "a leaf forged with the scope's key for another region's DNS name",
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'name constraints',
    diverges: { pkix: JAVA_ANCHOR_NC, jsse: JAVA_ANCHOR_NC },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, {
        dns: ['api.eu-west-1.mesh.example'],
        uris: ['spiffe://us-east-1.mesh.example/x'],
      }),
    }),
  },
  {
    name: "a leaf forged with the scope's key for another region's SPIFFE ID (URI SAN), its DNS name inside",
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'name constraints',
    diverges: {
      pkix: JAVA_ANCHOR_NC,
      jsse: JAVA_ANCHOR_NC,
      gnutls: GNUTLS_URI,
    },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, {
        dns: ['x.us-east-1.mesh.example'],
        uris: ['spiffe://eu-west-1.mesh.example/api'],
      }),
    }),
  },
  {
    name: "the DNS forgery, judged by a global service (it trusts every region's intermediate)",
    purpose: 'client',
    anchor: 'global',
    accepted: false,
    refusedFor: 'name constraints',
    diverges: { pkix: JAVA_ANCHOR_NC, jsse: JAVA_ANCHOR_NC },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, {
        dns: ['api.eu-west-1.mesh.example'],
        uris: ['spiffe://us-east-1.mesh.example/x'],
      }),
    }),
  },
  {
    name: "the URI forgery, judged by a global service (it trusts every region's intermediate)",
    purpose: 'client',
    anchor: 'global',
    accepted: false,
    refusedFor: 'name constraints',
    diverges: {
      pkix: JAVA_ANCHOR_NC,
      jsse: JAVA_ANCHOR_NC,
      gnutls: GNUTLS_URI,
    },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, {
        dns: ['x.us-east-1.mesh.example'],
        uris: ['spiffe://eu-west-1.mesh.example/api'],
      }),
    }),
  },
  {
    name: 'the DNS forgery, judged by a consumer anchored on the root',
    purpose: 'client',
    anchor: 'root',
    accepted: false,
    refusedFor: 'name constraints',
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, {
        dns: ['api.eu-west-1.mesh.example'],
        uris: ['spiffe://us-east-1.mesh.example/x'],
      }),
    }),
  },
  {
    name: 'the URI forgery, judged by a consumer anchored on the root',
    purpose: 'client',
    anchor: 'root',
    accepted: false,
    refusedFor: 'name constraints',
    diverges: { gnutls: GNUTLS_URI },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, {
        dns: ['x.us-east-1.mesh.example'],
        uris: ['spiffe://eu-west-1.mesh.example/api'],
      }),
    }),
  },
  {
    name: "a CA forged under the scope's intermediate (pathLen 0) issuing an in-scope leaf",
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'path length',
    diverges: { pkix: JAVA_ANCHOR_PATHLEN, jsse: JAVA_ANCHOR_PATHLEN },
    build: async (w) => {
      const sub = await forgeCertificate(w.region, {
        subject: 'O=test, OU=us-east-1, CN=forged sub-CA',
        profile: PROFILES.intermediate,
        permitted: permittedNamesFor('us-east-1', 'mesh.example'),
        notBefore: new Date(w.now.getTime() - 60_000),
        notAfter: new Date(w.now.getTime() + 30 * DAY),
      });
      const leaf = await forgedLeaf(w, sub, INSIDE);
      return { presented: { ...leaf, chain: leaf.chain + w.region.cert }, crls: [await forgeLeafCrl(sub, w.now)] };
    },
  },
  {
    name: 'a leaf with serverAuth only, presented as a client',
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'purpose',
    diverges: { pkix: PKIX_NO_EKU },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, INSIDE, { ...PROFILES.leaf, extendedKeyUsage: [EKU_SERVER] }),
    }),
  },
  {
    name: 'a leaf with clientAuth only, presented as a server',
    purpose: 'server',
    anchor: 'region',
    accepted: false,
    refusedFor: 'purpose',
    diverges: { pkix: PKIX_NO_EKU },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, INSIDE, { ...PROFILES.leaf, extendedKeyUsage: [EKU_CLIENT] }),
    }),
  },
  {
    name: 'an expired leaf (renewed 30 days ago, 7-day life)',
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'expired',
    build: async (w) => ({ presented: w.leaf('us-east-1', 'api', w.expiredOut) }),
  },
  {
    name: 'a leaf not valid yet (renewed as of 30 days from now)',
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'not yet valid',
    build: async (w) => ({ presented: w.leaf('us-east-1', 'api', w.futureOut) }),
  },
  {
    name: 'a revoked leaf (trellis-ci revoke; the scope CRL lists it)',
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'revoked',
    diverges: {
      go: 'crypto/x509 Verify takes no CRL and does no revocation checking; an application must check the CRL itself',
    },
    build: async (w) => ({ presented: w.revoked }),
  },
  {
    name: 'a leaf with keyEncipherment only (no digitalSignature), presented as a client',
    purpose: 'client',
    anchor: 'region',
    accepted: false,
    refusedFor: 'leaf key usage',
    diverges: {
      pkix: PKIX_NO_LEAF_KU,
      go: "Go 1.19 crypto/x509 does not check a leaf's key usage (it checks EKU, and keyCertSign on CAs)",
      gnutls:
        "certtool --verify (GnuTLS chain verification) checks EKU, not a leaf's key usage; GnuTLS checks that " +
        'in a handshake, against the signature it verifies',
    },
    build: async (w) => ({
      presented: await forgedLeaf(w, w.region, INSIDE, { ...PROFILES.leaf, keyUsage: KU_KEY_ENCIPHERMENT }),
    }),
  },
  {
    name:
      'a second us-east-1 intermediate the root signed to the profile, for a root-anchored consumer (the control ' +
      'for the next row)',
    purpose: 'client',
    anchor: 'root',
    accepted: true,
    diverges: { botan: BOTAN_NO_NC },
    build: (w) => rootSignedIntermediate(w, 'second intermediate', PROFILES.intermediate.keyUsage),
  },
  {
    name: 'an intermediate the root signed without keyCertSign (cRLSign only), for a root-anchored consumer',
    purpose: 'client',
    anchor: 'root',
    accepted: false,
    refusedFor: 'CA key usage',
    build: (w) => rootSignedIntermediate(w, 'intermediate without keyCertSign', KU_CRL_SIGN),
  },
];

/** The verdict the table requires of `v` on `row`. */
function expectedOf(row: Row, v: Verifier): boolean {
  return row.diverges?.[v] ? !row.accepted : row.accepted;
}

let verdicts: Map<string, Verdict>;
let world: World;
let builtByName: Map<string, Built>;
let trustOf: Record<Anchor, Trust>;
const cellKey = (row: Row, v: Verifier) => `${v}\u0000${row.name}`;

/** Runs `jobs` with at most `limit` at once: the machine has 2 cores. */
async function bounded<T>(limit: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

/** Sorts a crl.pem into real CRLs and the anchor CRLs of `intermediates` (core's own test for one). */
async function splitAnchorCrls(
  pem: string,
  intermediates: Certificate[],
): Promise<{ crls: string[]; anchorCrls: string[] }> {
  const all = parseCrls(pem);
  const anchors = new Set(await Promise.all(intermediates.map((i) => anchorCrlOf(all, i))));
  const toPem = (c: (typeof all)[number]) => pemEncode('X509 CRL', new Uint8Array(c.rawData));
  return {
    crls: all.filter((c) => !anchors.has(c)).map(toPem),
    anchorCrls: all.filter((c) => anchors.has(c)).map(toPem),
  };
}

async function makeWorld(): Promise<World> {
  const now = new Date();
  const stamp = (d: Date) => d.toISOString().replace(/\.\d+Z$/, 'Z');
  const longAgo = stamp(new Date(now.getTime() - 30 * DAY));
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-conformance-'));
  const m = await FakeMesh.create({
    scopes: { global: ['control'], 'us-east-1': ['api', 'web', 'gone'], 'eu-west-1': ['api'] },
    now: longAgo,
    leaves: false,
  });
  const must = async (p: Promise<{ code: number; stderr: string }>) => {
    const r = await p;
    if (r.code !== 0) throw new Error(r.stderr);
  };
  const expiredOut = path.join(scratch, 'expired');
  await must(m.ci(['renew', '--now', longAgo, '--out', expiredOut]));
  await must(m.ci(['renew']));
  // The not-yet-valid leaf comes from a copy of the store, so the real one's records stay current.
  const futureOut = path.join(scratch, 'future');
  await must(
    m.clone().ci(['renew', '--now', stamp(new Date(now.getTime() + 30 * DAY)), '--now-ahead', '--out', futureOut]),
  );
  const leaf = (scope: string, service: string, outDir?: string): Presented => {
    const f = (name: string) =>
      fs.readFileSync(outDir ? path.join(outDir, scope, service, name) : m.out(scope, service, name), 'utf8');
    return { cert: f('cert.pem'), key: f('key.pem'), chain: f('chain.pem') };
  };
  const revoked = leaf('us-east-1', 'gone');
  await must(m.ci(['revoke', 'us-east-1/gone', '--reason', 'keyCompromise']));
  return {
    m,
    now,
    expiredOut,
    futureOut,
    revoked,
    leaf,
    peer: { region: leaf('us-east-1', 'web'), global: leaf('global', 'control'), root: leaf('us-east-1', 'web') },
    region: await openCa(
      m.ciIdentityFile,
      m.read('bundles/us-east-1/intermediate.key.age'),
      m.read('bundles/us-east-1/intermediate.pem'),
    ),
    root: await openCa(m.rootIdentityFile, m.read('bundles/root/root.key.age'), m.read('bundles/root/root.pem')),
  };
}

beforeAll(async () => {
  const w = (world = await makeWorld());
  const built = await Promise.all(ROWS.map((r) => r.build(w)));
  builtByName = new Map(ROWS.map((r, i) => [r.name, built[i]!]));
  const forgedCrls = (anchor: Anchor) => built.flatMap((b, i) => (ROWS[i]!.anchor === anchor ? (b.crls ?? []) : []));
  const intermediates = ['global', 'us-east-1', 'eu-west-1'].map((s) =>
    parseCertificate(w.m.read(`bundles/${s}/intermediate.pem`)),
  );
  // What deploy ships a service of `scope`: its trust bundle and the CRLs of every scope it trusts.
  const shipped = async (scope: string, anchor: Anchor): Promise<Trust> => {
    const crls = await splitAnchorCrls(releaseFor(loadMesh(new Store(w.m.dir)), scope)['crl.pem']!, intermediates);
    return {
      anchors: w.m.read(`bundles/${scope}/trust.pem`),
      crls: [...crls.crls, ...forgedCrls(anchor)],
      anchorCrls: crls.anchorCrls,
    };
  };
  const scopeCrls = await splitAnchorCrls(w.m.read('bundles/us-east-1/crl.pem'), intermediates);
  const trusts: Record<Anchor, Trust> = {
    region: await shipped('us-east-1', 'region'),
    global: await shipped('global', 'global'),
    // A root-anchored consumer: roots.pem, the root's CRL of intermediates and the scope's leaf CRL.
    root: {
      anchors: w.m.read('bundles/root/roots.pem'),
      crls: [w.m.read('bundles/root/crl.pem'), ...scopeCrls.crls, ...forgedCrls('root')],
      anchorCrls: [],
    },
  };
  trustOf = trusts;
  const verifiers = new Verifiers(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-verifiers-')));
  const cellOf = (row: Row, i: number) => ({
    presented: built[i]!.presented,
    trust: trusts[row.anchor],
    purpose: row.purpose,
    peer: w.peer[row.anchor],
  });
  const jvmJudged = new Set<Verifier>(JVM_VERIFIERS);
  // One JVM judges every row for its two columns while the other verifiers run a process per cell.
  const jvm = verifiers.jvm(ROWS.map(cellOf));
  const perCell = ROWS.flatMap((row, i) => VERIFIERS.filter((v) => !jvmJudged.has(v)).map((v) => ({ row, v, i })));
  const perCellResults = await bounded(
    2,
    perCell.map((c) => () => verifiers.run(c.v, cellOf(c.row, c.i))),
  );
  const jvmResults = await jvm;
  verdicts = new Map([
    ...perCell.map((c, k) => [cellKey(c.row, c.v), perCellResults[k]!] as const),
    ...ROWS.flatMap((row, i) => JVM_VERIFIERS.map((v) => [cellKey(row, v), jvmResults[i]![v]] as const)),
  ]);
  const cells = ROWS.flatMap((row) => VERIFIERS.map((v) => ({ row, v })));
  const results = cells.map((c) => verdicts.get(cellKey(c.row, c.v))!);
  // On demand, each verifier's own words per cell and the matrix docs/conformance.md shows: to refresh the doc.
  if (process.env.CONFORMANCE_REPORT) {
    fs.writeFileSync(`${process.env.CONFORMANCE_REPORT}.md`, `${renderMatrix(ROWS)}\n`);
    const lines = cells.map(
      (c, i) => `${c.row.name}\t${VERIFIER_LABEL[c.v]}\t${results[i]!.accepted ? '✓' : '✗'}\t${results[i]!.detail}`,
    );
    fs.writeFileSync(process.env.CONFORMANCE_REPORT, `${lines.join('\n')}\n`);
  }
}, 120_000);

describe.each(VERIFIERS.map((v) => [VERIFIER_LABEL[v], v] as const))('%s', (_, v) => {
  it.each(ROWS.map((row) => [row.name, row] as const))('%s', (_name, row) => {
    const got = verdicts.get(cellKey(row, v))!;
    const want = expectedOf(row, v);
    expect(
      got.accepted,
      `${VERIFIER_LABEL[v]} said ${got.detail}; the table wants ` +
        `${want ? 'accepted' : 'refused'}${row.diverges?.[v] ? ` (declared divergence: ${row.diverges[v]})` : ''}`,
    ).toBe(want);
    if (!want)
      expect(got.detail, `${VERIFIER_LABEL[v]} refused, but not for ${row.refusedFor}`).toMatch(
        v === 'botan' ? BOTAN_REFUSES[row.anchor] : REASONS[v][row.refusedFor!]!,
      );
  });
});

/**
 * A client handshake with `gnutls-serv --echo` (it requires and verifies client certificates): true when the echo comes
 * back.
 */
async function gnutlsServAccepts(port: number, client: Presented): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = tls.connect({
      host: '127.0.0.1',
      port,
      key: client.key,
      cert: client.chain,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => done(false), 5000);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    sock.on('secureConnect', () => sock.write('ping\n'));
    sock.on('data', (d) => done(String(d).includes('ping')));
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

async function listening(port: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(true)).on('error', () => resolve(false));
      s.on('connect', () => s.destroy());
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gnutls-serv did not listen on ${port}`);
}

describe('what a declared divergence rests on', () => {
  it("Botan 2 refuses a root-anchored trellis chain for the intermediate's ::/0 exclusion, then for the leaf's SPIFFE ID: only a chain with neither verifies", async () => {
    const verifiers = new Verifiers(fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-botan-')));
    const judge = async (excludedIps: string[], sans = INSIDE) => {
      const ca = await forgeCertificate(world.root, {
        subject: 'O=test, OU=us-east-1, CN=botan probe',
        profile: PROFILES.intermediate,
        permitted: { ...permittedNamesFor('us-east-1', 'mesh.example'), excludedIps },
        notBefore: new Date(world.now.getTime() - 60_000),
        notAfter: new Date(world.now.getTime() + 30 * DAY),
      });
      return verifiers.run('botan', {
        presented: await forgedLeaf(world, ca, sans),
        trust: trustOf.root,
        purpose: 'client',
        peer: world.peer.root,
      });
    };
    expect(permittedNamesFor('us-east-1', 'mesh.example').excludedIps).toEqual(['0.0.0.0/0', '::/0']);
    expect((await judge(['0.0.0.0/0', '::/0'])).detail).toMatch(BOTAN_REFUSES.root);
    // Without it, Botan 2 still refuses a trellis leaf: it matches no URI SAN (the SPIFFE ID) to a URI constraint.
    expect((await judge(['0.0.0.0/0'])).detail).toMatch(/Certificate does not pass name constraint$/);
    // Only a chain with neither verifies: not a way out, since without ::/0 an IPv6 SAN would lie outside every
    // constraint (and so be allowed), and trellis leaves carry their SPIFFE ID.
    expect(await judge(['0.0.0.0/0'], { dns: INSIDE.dns, uris: [] })).toEqual({
      accepted: true,
      detail: 'Certificate passes validation checks',
    });
  });

  it('GnuTLS refuses the keyEncipherment-only client in a handshake (gnutls-serv), though certtool --verify accepts its chain', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'trellis-gnutls-serv-'));
    const f = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const port = freePort();
    const serv = spawn(
      'gnutls-serv',
      [
        '--port',
        String(port),
        '--echo',
        '--require-client-cert',
        '--verify-client-cert',
        '--x509cafile',
        f('trust.pem', trustOf.region.anchors),
        '--x509certfile',
        f('chain.pem', world.peer.region.chain),
        '--x509keyfile',
        f('key.pem', world.peer.region.key),
      ],
      { stdio: 'ignore' },
    );
    try {
      await listening(port);
      const kuRow = ROWS.find((r) => r.refusedFor === 'leaf key usage')!;
      expect(kuRow.diverges?.gnutls).toBeDefined();
      expect(await gnutlsServAccepts(port, world.leaf('us-east-1', 'api'))).toBe(true);
      expect(await gnutlsServAccepts(port, builtByName.get(kuRow.name)!.presented)).toBe(false);
    } finally {
      serv.kill();
    }
  });
});

/**
 * The table as docs/conformance.md shows it: one row per case, ✓ accepted, ✗ refused, † a declared divergence, ‡
 * refused before the row's question (Botan 2: BOTAN_REFUSES).
 */
function renderMatrix(rows: Row[]): string {
  const head = `| case | purpose | anchor | table | ${VERIFIERS.map((v) => VERIFIER_LABEL[v]).join(' | ')} |`;
  const sep = `|---|---|---|---|${VERIFIERS.map(() => '---').join('|')}|`;
  const mark = (ok: boolean) => (ok ? '✓' : '✗');
  const cell = (r: (typeof rows)[number], v: (typeof VERIFIERS)[number]) =>
    r.diverges?.[v] ? `${mark(!r.accepted)} †` : v === 'botan' ? '✗ ‡' : mark(r.accepted);
  const lines = rows.map(
    (r) =>
      `| ${r.name} | ${r.purpose} | ${r.anchor} | ${mark(r.accepted)} | ` +
      `${VERIFIERS.map((v) => cell(r, v)).join(' | ')} |`,
  );
  return [head, sep, ...lines].join('\n');
}

describe('the table itself', () => {
  it('every declared divergence names its reason, and every refusal says how each verifier words it', () => {
    for (const row of ROWS) {
      if (!row.accepted)
        for (const v of VERIFIERS)
          if (!row.diverges?.[v] && v !== 'botan')
            expect(REASONS[v][row.refusedFor!], `${row.name}: ${v}`).toBeInstanceOf(RegExp);
      if (row.accepted) expect(row.refusedFor, row.name).toBeUndefined();
      for (const [v, why] of Object.entries(row.diverges ?? {})) {
        expect(VERIFIERS).toContain(v);
        expect(why!.length, `${row.name}: ${v}`).toBeGreaterThan(20);
      }
    }
  });
  it('docs/conformance.md shows this very table', () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs/conformance.md'), 'utf8');
    expect(doc).toContain(renderMatrix(ROWS));
  });
});
