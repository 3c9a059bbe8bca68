/** @trellis/core: the model, rules and store of a trellis mesh. Root-signing code is not here: it lives in @trellis/offline. */
export { TrellisError, isTrellisError, type Reason } from './errors.js';
export { parseDuration, formatDuration, parseInstant, iso } from './time.js';
export * from './names.js';
export { parseMeshConfig, serializeMeshConfig, parseScope, toYaml, MESH_DEFAULTS, type MeshConfig, type ScopeDef, type ServiceDef, type ScopeKind, type DeployTarget } from './config.js';
export {
  KEY_ALGORITHMS, nodeCryptoSeam, randomSerial, exportPrivateKeyPem, importSigningKey, privateKeyAlgorithm, publicKeyDerOf, sha256Hex, pemEncode, pemDecodeAll,
  type KeyAlgorithm, type CryptoSeam,
} from './crypto.js';
export { parseCertificate, parseCertificates, certificatePem, fingerprint, signCertificate, signedBy, subjectAltNames, spkiDer, type Certificate } from './certificates.js';
export { encodeNameConstraints, decodeNameConstraints, nameConstraintsExtension } from './name-constraints.js';
export { PROFILES, extensionsFor, validityWithin, renewalPoint, assertNamesInside, profileViolations, BACKDATE_MS, type Tier, type Profile } from './profiles.js';
export { leafDue, leafNames, parseIssuanceRecord, serializeIssuanceRecord, type LeafRecord, type IssuanceRecord, type DueReason } from './issuance.js';
export { mintLeaf, type MintedLeaf, type SigningIntermediate, type LeafRequest } from './leaf.js';
export { trustedScopes, composeTrust, trustPem, trustOpensslPem, parseTrustOpensslPem } from './trust.js';
export { appendToLedger, ledgerProblems, ledgerHead, ledgerFingerprints, parseLedger, canonicalJson, type LedgerEntry, type LedgerDraft, type Created } from './ledger.js';
export {
  assertCiPosture, assertRootPosture, readIdentities, requireIdentities, validateRecipients, encryptTo, tryDecrypt, decryptWith, newIdentity, recipientOf,
  type Env, type IdentityKind,
} from './custody.js';
export { Store, findStore, writeFileAtomic, STORE_FILE, type FileWrite } from './store.js';
export { loadMesh, paths, scopeDef, activeIntermediate, trustedIntermediatesOf, trustBundleFiles, type Mesh, type ScopeMaterial } from './mesh.js';
export { verifyMesh, custodyFindings, worstLevel, EXPIRY_WARNING, type Finding, type Level } from './verify.js';
export { planRenew, meshStatus, type RenewPlan, type RenewItem, type MeshStatus, type ScopeStatus, type LeafState } from './plan.js';
export { renderFindings, renderStatus } from './report.js';
export { runMain, clock, openStore, withStore, actor, onlineInterfaces } from './shell.js';
