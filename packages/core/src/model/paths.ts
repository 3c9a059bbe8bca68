/** The one table of where each file of the store lives. */
/** The store's marker and configuration file. */
export const STORE_FILE = 'trellis.yaml';
/** The bundle one anchor per file: OpenSSL's hashed directory, and one file per scope and fingerprint. */
export const CAPATH_DIR = 'capath';
export const ANCHORS_DIR = 'anchors';

export const paths = {
  config: STORE_FILE,
  scopeFile: (s: string) => `scopes/${s}.yaml`,
  /** A `key: host` service's certificate request, committed beside its scope file. */
  csr: (s: string, service: string) => `scopes/${s}/${service}.csr.pem`,
  /** A host key rotation's proof: the current key's signature over the new one (docs/host-keys.md). */
  keyProof: (s: string, service: string) => `scopes/${s}/${service}.key-proof.json`,
  rootCert: 'bundles/root/root.pem',
  roots: 'bundles/root/roots.pem',
  rootKey: 'bundles/root/root.key.age',
  /** A root key on a PKCS#11 token: its RFC 7512 URI, in place of root.key.age. */
  rootKeyUri: 'bundles/root/root.key.uri',
  rootCrl: 'bundles/root/crl.pem',
  rootLedger: 'bundles/root/ledger.jsonl',
  rootPrevious: 'bundles/root/root.previous.pem',
  rootPreviousKey: 'bundles/root/root.previous.key.age',
  rootPreviousKeyUri: 'bundles/root/root.previous.key.uri',
  link: 'bundles/root/link.pem',
  rootState: 'bundles/root/state.yaml',
  intermediate: (s: string) => `bundles/${s}/intermediate.pem`,
  intermediateKey: (s: string) => `bundles/${s}/intermediate.key.age`,
  /** publish phase: the intermediate being introduced. */
  nextIntermediate: (s: string) => `bundles/${s}/intermediate.next.pem`,
  nextIntermediateKey: (s: string) => `bundles/${s}/intermediate.next.key.age`,
  /** switch phase: the intermediate being retired. */
  previousIntermediate: (s: string) => `bundles/${s}/intermediate.previous.pem`,
  previousIntermediateKey: (s: string) => `bundles/${s}/intermediate.previous.key.age`,
  /** standby: minted by a ceremony, its key to the break-glass recipient only; in no bundle until activate-standby. */
  standbyIntermediate: (s: string) => `bundles/${s}/intermediate.standby.pem`,
  standbyIntermediateKey: (s: string) => `bundles/${s}/intermediate.standby.key.age`,
  /** activate-standby: the standby's signed statement naming the keys it replaced, carried in sealed releases. */
  burned: (s: string) => `bundles/${s}/burned.json`,
  /** root overlap: the active intermediate's certificate under the previous root. */
  oldRootIntermediate: (s: string) => `bundles/${s}/intermediate.old-root.pem`,
  trust: (s: string) => `bundles/${s}/trust.pem`,
  trustOpenssl: (s: string) => `bundles/${s}/trust.openssl.pem`,
  /** One anchor per file: hash-named OpenSSL trusted form (CApath), and plain PEM. */
  capath: (s: string) => `bundles/${s}/${CAPATH_DIR}`,
  anchors: (s: string) => `bundles/${s}/${ANCHORS_DIR}`,
  scopeCrl: (s: string) => `bundles/${s}/crl.pem`,
  state: (s: string) => `bundles/${s}/state.yaml`,
  leaves: (s: string) => `bundles/${s}/leaves.yaml`,
  ledger: (s: string) => `bundles/${s}/ledger.jsonl`,
  /** Signed probe runs of the scope's endpoints (rotation/fleet-gate.ts), the newest few. */
  probes: (s: string) => `bundles/${s}/probes`,
};
