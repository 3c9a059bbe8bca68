/**
 * A root key on a PKCS#11 token (RFC 7512 URI): generated on the token,
 * non-extractable and sensitive, and every root signature made there.
 * The native binding (pkcs11js) is loaded only when a token is named, so a
 * store with a file root works without it (and the single-file build needs
 * it only beside the bundle, for token roots).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { createHash, createPublicKey, randomBytes, verify as verifySignature, webcrypto } from 'node:crypto';
import {
  TrellisError,
  encodeCertificate,
  paths,
  encodeCrl,
  spkiDer,
  type Certificate,
  type CryptoSeam,
  type KeyAlgorithm,
  tokenRefusal,
} from '@trellis/core';

/** What a token root's signer carries instead of a WebCrypto key: the session and the key's handle. */
export interface TokenKey {
  readonly type: 'private';
  readonly extractable: false;
  readonly usages: KeyUsage[];
  readonly algorithm: EcKeyAlgorithm;
  readonly uri: string;
  /** A DER-encoded ECDSA signature over `data` (the ledger's form). */
  signDer(data: Uint8Array): Buffer;
  /** A raw r||s ECDSA signature over `data` (WebCrypto's form, what @peculiar/x509 expects). */
  signRaw(data: Uint8Array): Buffer;
}

const TOKEN_KEY = Symbol('trellis.tokenKey');
const isTokenKey = (k: unknown): k is TokenKey => typeof k === 'object' && k !== null && TOKEN_KEY in k;

/**
 * Where PIN and module come from besides the environment: flags, set once by trellis-root's middleware, and whether the
 * store's root keys are all on tokens.
 */
const flags: { module?: string; pinFile?: string; tokenRootsOnly?: boolean } = {};
export function setTokenFlags(f: { pkcs11Module?: string; pinFile?: string; storeDir?: string }): void {
  flags.module = f.pkcs11Module;
  flags.pinFile = f.pinFile;
  const has = (p: string) => f.storeDir !== undefined && fs.existsSync(path.join(f.storeDir, p));
  flags.tokenRootsOnly = has(paths.rootKeyUri) && !has(paths.rootKey) && !has(paths.rootPreviousKey);
}
export const tokenRootsOnly = (): boolean => Boolean(flags.tokenRootsOnly);

export interface TokenUri {
  token?: string;
  object?: string;
  id?: Buffer;
  serial?: string;
  manufacturer?: string;
  model?: string;
  modulePath?: string;
}

const PATH_ATTRS = new Set([
  'token',
  'object',
  'id',
  'serial',
  'manufacturer',
  'model',
  'type',
  'library-manufacturer',
  'library-description',
  'library-version',
  'slot-id',
  'slot-description',
  'slot-manufacturer',
]);

/**
 * Parses an RFC 7512 PKCS#11 URI. A PIN in the URI is refused: the URI is recorded in the store, the PIN is a secret.
 */
export function parseTokenUri(
  uri: string,
  place: { field: string } | { file: string } = { field: '--root-key' },
): TokenUri {
  const bad = (why: string) =>
    new TrellisError('file' in place ? 'corrupt-store' : 'usage', `not a usable PKCS#11 URI: ${why}`, {
      ...place,
      hint: "e.g. 'pkcs11:token=trellis-root;object=root' (RFC 7512)",
    });
  if (!uri.startsWith('pkcs11:')) throw bad('it must start with pkcs11:');
  const [pathPart, query = ''] = uri.slice('pkcs11:'.length).split('?', 2) as [string, string?];
  const dec = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      throw bad('a malformed %-escape');
    }
  };
  const out: TokenUri = {};
  for (const part of pathPart.split(';').filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 1) throw bad(`attribute "${part.slice(0, 20)}" has no value`);
    const k = part.slice(0, eq);
    const v = part.slice(eq + 1);
    if (!PATH_ATTRS.has(k)) throw bad(`unknown path attribute ${k}`);
    if (k === 'token') out.token = dec(v);
    else if (k === 'object') out.object = dec(v);
    else if (k === 'serial') out.serial = dec(v);
    else if (k === 'manufacturer') out.manufacturer = dec(v);
    else if (k === 'model') out.model = dec(v);
    else if (k === 'id')
      out.id = Buffer.from(
        v.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))),
        'latin1',
      );
  }
  for (const part of query.split('&').filter(Boolean)) {
    const [k, v = ''] = part.split('=', 2) as [string, string?];
    if (k === 'pin-value' || k === 'pin-source')
      throw bad(
        `${k} does not belong in the URI (it is recorded in the store): give the PIN with TRELLIS_PKCS11_PIN ` +
          `or --pin-file`,
      );
    if (k === 'module-path') out.modulePath = dec(v);
  }
  if (!out.token && !out.serial) throw bad('name the token (token=LABEL or serial=…)');
  if (!out.object && !out.id) throw bad('name the key (object=LABEL or id=…)');
  return out;
}

const CURVES: Partial<
  Record<KeyAlgorithm, { params: string; spkiPrefix: string; size: number; hash: string; namedCurve: string }>
> = {
  'ecdsa-p256': {
    params: '06082a8648ce3d030107',
    spkiPrefix: '3059301306072a8648ce3d020106082a8648ce3d030107034200',
    size: 32,
    hash: 'sha256',
    namedCurve: 'P-256',
  },
  'ecdsa-p384': {
    params: '06052b81040022',
    spkiPrefix: '3076301006072a8648ce3d020106052b81040022036200',
    size: 48,
    hash: 'sha384',
    namedCurve: 'P-384',
  },
};

// biome-ignore lint/suspicious/noExplicitAny: the optional native pkcs11js, loaded with require, has untyped handles.
type Pkcs11 = any;
let binding: { mod: Pkcs11; lib: Pkcs11; path: string } | undefined;

const tokenError = tokenRefusal;

/** Loads pkcs11js and the token's module once per process. */
function load(uri: TokenUri): { mod: Pkcs11; lib: Pkcs11 } {
  const modulePath = flags.module ?? process.env.TRELLIS_PKCS11_MODULE ?? uri.modulePath;
  if (!modulePath)
    throw tokenError(
      'no PKCS#11 module to reach the token with',
      'pass --pkcs11-module /path/to/module.so or set TRELLIS_PKCS11_MODULE (SoftHSM2: ' +
        '/usr/lib/softhsm/libsofthsm2.so; YubiKey: libykcs11.so)',
    );
  if (binding) {
    if (binding.path !== modulePath)
      throw tokenError('two PKCS#11 modules in one ceremony', 'use one module for both roots');
    return binding;
  }
  let mod: Pkcs11;
  try {
    mod = createRequire(import.meta.url)('pkcs11js');
  } catch {
    throw tokenError(
      'the PKCS#11 binding (pkcs11js) is not installed beside trellis-root',
      'install pkcs11js next to the bundle (docs/root-on-token.md); a file root needs none',
    );
  }
  const lib = new mod.PKCS11();
  try {
    lib.load(modulePath);
    lib.C_Initialize();
  } catch (e) {
    throw tokenError(
      `cannot load the PKCS#11 module ${modulePath} (${(e as Error).message.split('\n')[0]})`,
      'check --pkcs11-module / TRELLIS_PKCS11_MODULE',
    );
  }
  process.once('exit', () => {
    try {
      lib.C_Finalize();
    } catch {
      /* the process ends anyway */
    }
  });
  binding = { mod, lib, path: modulePath };
  return binding;
}

const trim = (s: string) => s.replace(/[\s\0]+$/, '');

/** The PIN from --pin-file or TRELLIS_PKCS11_PIN; never printed, never part of an error. */
function readPin(): string {
  if (flags.pinFile) {
    try {
      return fs.readFileSync(flags.pinFile, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw tokenError(`cannot read the PIN file ${flags.pinFile}`, 'check --pin-file');
    }
  }
  const pin = process.env.TRELLIS_PKCS11_PIN;
  if (!pin) throw tokenError('no token PIN', 'set TRELLIS_PKCS11_PIN or pass --pin-file FILE');
  return pin;
}

/** Opens a logged-in session on the token the URI names. */
function session(uri: TokenUri, text: string): { mod: Pkcs11; lib: Pkcs11; s: Buffer } {
  const { mod, lib } = load(uri);
  const slots: Buffer[] = lib.C_GetSlotList(true);
  const slot = slots.find((sl) => {
    const t = lib.C_GetTokenInfo(sl);
    return (
      (!uri.token || trim(t.label) === uri.token) &&
      (!uri.serial || trim(t.serialNumber) === uri.serial) &&
      (!uri.manufacturer || trim(t.manufacturerID) === uri.manufacturer) &&
      (!uri.model || trim(t.model) === uri.model)
    );
  });
  if (!slot)
    throw tokenError(
      `no token matching ${text} is present`,
      'insert the token, or check the URI (softhsm2-util --show-slots / pkcs11-tool -L)',
    );
  const pin = readPin();
  const s = lib.C_OpenSession(slot, mod.CKF_RW_SESSION | mod.CKF_SERIAL_SESSION);
  try {
    lib.C_Login(s, mod.CKU_USER, pin);
  } catch (e) {
    const code = (e as { code?: number }).code;
    if (code === mod.CKR_USER_ALREADY_LOGGED_IN) return { mod, lib, s };
    const why =
      code === mod.CKR_PIN_INCORRECT
        ? 'the PIN is wrong'
        : code === mod.CKR_PIN_LOCKED
          ? 'the PIN is locked'
          : 'login failed';
    throw tokenError(
      `the token refused the login: ${why}`,
      code === mod.CKR_PIN_LOCKED
        ? 'unblock the PIN with the SO PIN'
        : 'check TRELLIS_PKCS11_PIN / --pin-file (tokens lock after a few wrong PINs)',
    );
  }
  return { mod, lib, s };
}

function keyTemplate(mod: Pkcs11, uri: TokenUri, cls: number) {
  return [
    { type: mod.CKA_CLASS, value: cls },
    ...(uri.object ? [{ type: mod.CKA_LABEL, value: uri.object }] : []),
    ...(uri.id ? [{ type: mod.CKA_ID, value: uri.id }] : []),
  ];
}

function find(lib: Pkcs11, s: Buffer, template: unknown[]): Buffer[] {
  lib.C_FindObjectsInit(s, template);
  const found: Buffer[] = lib.C_FindObjects(s, 2);
  lib.C_FindObjectsFinal(s);
  return found;
}

/** r||s → DER SEQUENCE { INTEGER r, INTEGER s }. */
function rawToDer(raw: Buffer): Buffer {
  const int = (b: Buffer) => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    let v = b.subarray(i);
    if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const half = raw.length / 2;
  const body = Buffer.concat([int(raw.subarray(0, half)), int(raw.subarray(half))]);
  return Buffer.concat([Buffer.from(body.length < 128 ? [0x30, body.length] : [0x30, 0x81, body.length]), body]);
}

function tokenKey(
  text: string,
  algorithm: KeyAlgorithm,
  lib: Pkcs11,
  mod: Pkcs11,
  s: Buffer,
  handle: Buffer,
): TokenKey {
  const curve = CURVES[algorithm]!;
  const signRaw = (data: Uint8Array) => {
    lib.C_SignInit(s, { mechanism: mod.CKM_ECDSA }, handle);
    return Buffer.from(lib.C_Sign(s, createHash(curve.hash).update(data).digest(), Buffer.alloc(curve.size * 2 + 16)));
  };
  return {
    [TOKEN_KEY]: true,
    type: 'private',
    extractable: false,
    usages: ['sign'],
    uri: text,
    algorithm: { name: 'ECDSA', namedCurve: curve.namedCurve },
    signRaw,
    signDer: (data) => rawToDer(signRaw(data)),
  } as TokenKey;
}

const curveOf = (algorithm: KeyAlgorithm) => {
  const c = CURVES[algorithm];
  if (!c)
    throw new TrellisError(
      'usage',
      `a token root must be ecdsa-p256 or ecdsa-p384 (what PIV tokens and HSMs hold), not ${algorithm}`,
      { field: '--algorithm' },
    );
  return c;
};

/**
 * Generates the root key pair on the token (sensitive, never extractable); returns the public key and the token signer.
 */
export async function generateOnToken(
  text: string,
  algorithm: KeyAlgorithm,
): Promise<{ publicKey: CryptoKey; privateKey: TokenKey }> {
  const curve = curveOf(algorithm);
  const uri = parseTokenUri(text);
  const { mod, lib, s } = session(uri, text);
  if (
    find(lib, s, keyTemplate(mod, uri, mod.CKO_PRIVATE_KEY)).length ||
    find(lib, s, keyTemplate(mod, uri, mod.CKO_PUBLIC_KEY)).length
  ) {
    throw tokenError(
      `the token already holds a key named by ${text}`,
      'name a new object (object=…); trellis never overwrites a key on a token',
    );
  }
  const id = uri.id ?? randomBytes(16);
  const common = [
    { type: mod.CKA_TOKEN, value: true },
    { type: mod.CKA_ID, value: id },
    ...(uri.object ? [{ type: mod.CKA_LABEL, value: uri.object }] : []),
  ];
  const keys = lib.C_GenerateKeyPair(
    s,
    { mechanism: mod.CKM_EC_KEY_PAIR_GEN },
    [
      ...common,
      { type: mod.CKA_EC_PARAMS, value: Buffer.from(curve.params, 'hex') },
      { type: mod.CKA_VERIFY, value: true },
      { type: mod.CKA_ENCRYPT, value: false },
      { type: mod.CKA_WRAP, value: false },
    ],
    [
      ...common,
      { type: mod.CKA_PRIVATE, value: true },
      { type: mod.CKA_SENSITIVE, value: true },
      { type: mod.CKA_EXTRACTABLE, value: false },
      { type: mod.CKA_SIGN, value: true },
      { type: mod.CKA_DECRYPT, value: false },
      { type: mod.CKA_UNWRAP, value: false },
      { type: mod.CKA_DERIVE, value: false },
    ],
  );
  const [pointAttr] = lib.C_GetAttributeValue(s, keys.publicKey, [{ type: mod.CKA_EC_POINT }]);
  let point = Buffer.from(pointAttr.value as Buffer);
  // CKA_EC_POINT is a DER OCTET STRING around the uncompressed point (some modules give the bare point).
  if (point.length === curve.size * 2 + 3 && point[0] === 0x04) point = point.subarray(2);
  const spki = Buffer.concat([Buffer.from(curve.spkiPrefix, 'hex'), point]);
  const publicKey = await webcrypto.subtle.importKey(
    'spki',
    spki,
    { name: 'ECDSA', namedCurve: curve.namedCurve },
    true,
    ['verify'],
  );
  return {
    publicKey: publicKey as unknown as CryptoKey,
    privateKey: tokenKey(text, algorithm, lib, mod, s, keys.privateKey),
  };
}

const CHALLENGE = 'trellis-token-challenge-v1:';

/**
 * Opens the token key a store names and proves it is `cert`'s key: a fresh
 * challenge signed on the token must verify under the certificate's public key.
 */
export function openTokenKey(
  text: string,
  cert: Certificate,
  certFile: string,
): { key: TokenKey; algorithm: KeyAlgorithm } {
  const spki = spkiDer(cert);
  const pub = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  const named = pub.asymmetricKeyDetails?.namedCurve;
  const algorithm: KeyAlgorithm | undefined =
    named === 'prime256v1' ? 'ecdsa-p256' : named === 'secp384r1' ? 'ecdsa-p384' : undefined;
  if (!algorithm)
    throw new TrellisError(
      'corrupt-store',
      `${certFile} does not hold an ECDSA P-256/P-384 key, so it cannot be a token root`,
      { file: certFile },
    );
  const uri = parseTokenUri(text, { file: paths.rootKeyUri });
  const { mod, lib, s } = session(uri, text);
  const found = find(lib, s, keyTemplate(mod, uri, mod.CKO_PRIVATE_KEY));
  if (found.length !== 1) {
    throw tokenError(
      found.length
        ? `more than one private key on the token matches ${text}`
        : `the token holds no private key matching ${text}`,
      'check the URI in bundles/root/root.key.uri against pkcs11-tool -O',
    );
  }
  const key = tokenKey(text, algorithm, lib, mod, s, found[0]!);
  const challenge = Buffer.concat([Buffer.from(CHALLENGE), randomBytes(32)]);
  if (!verifySignature(CURVES[algorithm]!.hash, challenge, pub, key.signDer(challenge))) {
    throw new TrellisError('key-mismatch', `the token key ${text} does not match ${certFile}`, {
      file: certFile,
      hint: 'the URI names another key: check object=/id= against the token (pkcs11-tool -O)',
    });
  }
  return { key, algorithm };
}

/** A WebCrypto provider for @peculiar/x509 that signs with token keys and leaves everything else to node:crypto. */
const tokenCrypto = {
  getRandomValues: webcrypto.getRandomValues.bind(webcrypto),
  subtle: new Proxy(webcrypto.subtle, {
    get(target, prop) {
      if (prop === 'sign') {
        return async (alg: unknown, key: unknown, data: Uint8Array) =>
          isTokenKey(key)
            ? new Uint8Array(key.signRaw(new Uint8Array(data))).buffer
            : target.sign(alg as EcdsaParams, key as webcrypto.CryptoKey, data);
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }),
} as unknown as Crypto;

/**
 * The CryptoSeam of a ceremony: `base` for everything, except that certificates and CRLs signed by a token key are
 * signed on the token.
 */
export function tokenAwareSeam(base: CryptoSeam): CryptoSeam {
  return {
    ...base,
    signCertificate: (p) => (isTokenKey(p.signingKey) ? encodeCertificate(p, tokenCrypto) : base.signCertificate(p)),
    signCrl: (p) => (isTokenKey(p.key) ? encodeCrl(p, tokenCrypto) : base.signCrl(p)),
  };
}

/** True when a PIN was given (flag or environment): verify proves token custody only then. */
export const tokenPinGiven = (): boolean => Boolean(flags.pinFile || process.env.TRELLIS_PKCS11_PIN);
