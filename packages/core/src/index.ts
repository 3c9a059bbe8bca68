/**
 * @trellis/core: the model, rules and store of a trellis mesh. Root-signing code is not here: it lives
 * in @trellis/offline.
 */
export { TrellisError, isTrellisError, REASONS } from './model/errors.js';
export { parseDuration, formatDuration, iso, CLOCK_SKEW_MS, notYetValid, assertNowNotAhead } from './model/time.js';
export {
  GLOBAL_SCOPE,
  SCOPE_NAME,
  scopeDomain,
  serviceDnsName,
  type PermittedNames,
  permittedNamesFor,
} from './model/names.js';
export {
  parseMeshConfig,
  serializeMeshConfig,
  ciRecipientIn,
  parseScope,
  describeTarget,
  toYaml,
  POLICY_CEILINGS,
  type MeshConfig,
  type ScopeDef,
  type ScopeKind,
  type DeployTarget,
  type DeployAllowList,
} from './config/config.js';
export {
  KEY_ALGORITHMS,
  randomSerial,
  exportPrivateKeyPem,
  importSigningKey,
  publicKeyDerOf,
  signBytes,
  sha256Hex,
  pemEncode,
  pemDecodeAll,
  type KeyAlgorithm,
} from './crypto/crypto.js';
export {
  parseCertificate,
  parseCertificates,
  certificatePem,
  fingerprint,
  keyId,
  signedBy,
  subjectAltNames,
  spkiDer,
  keyMatchesCert,
  type Certificate,
} from './x509/certificates.js';
export {
  PROFILES,
  extensionsFor,
  validityWithin,
  assertSignsAt,
  profileViolations,
  BACKDATE_MS,
  type Profile,
} from './x509/profiles.js';
export { leafNames, parseIssuanceRecord, serializeIssuanceRecord } from './ledger/issuance.js';
export {
  mintLeaf,
  leafTemplateFor,
  leafBatch,
  mintedFromBatch,
  type MintedLeaf,
  type SigningIntermediate,
} from './x509/leaf.js';
export { leafTbs, leafKeyPair, LEAF_SECRET_BYTES, type EncodedLeaf } from './x509/leaf-template.js';
export { trustedScopes, trustPem, trustOpensslPem } from './trust/trust.js';
export { subjectHash } from './x509/subject-hash.js';
export {
  appendToLedger,
  ledgerProblems,
  ledgerHead,
  parseLedger,
  canonicalJson,
  type LedgerEntry,
  type LedgerDraft,
  type Created,
} from './ledger/ledger.js';
export { ledgerSigner, type LedgerSigner } from './ledger/ledger-signature.js';
export {
  rootLedgerTrustOf,
  rootClockBound,
  scopeLedgerTrust,
  assertLedgerCounts,
} from './ledger/ledger-trust.js';
export { leafCreated } from './ledger/record-proofs.js';
export { readPlainYaml, writePlainYaml } from './config/plain-yaml.js';
export {
  assertCiPosture,
  assertNoBreakglass,
  assertBreakglassPosture,
  assertRootPosture,
  assertAgentPosture,
  assertDrillPosture,
  assertProbePosture,
  assertClockNotBehindLedger,
  childEnv,
  quoteInput,
  quotePeerOutput,
  readIdentities,
  requireIdentities,
  validateRecipients,
  encryptTo,
  tryDecrypt,
  decryptWith,
  newIdentity,
  recipientOf,
  isPq,
  assertTypedBack,
  assertPqRecipients,
  tokenRefusal,
} from './custody/custody.js';
export {
  SHARE_MAGIC,
  combineShares,
  parseShare,
  parseSharesSpec,
  splitIdentity,
  type IdentityShare,
} from './custody/shares.js';
export { reencrypt, withRecipients } from './custody/rekey.js';
export {
  assertIdentityScoped,
  refuseRootOpeners,
  ciRecipientOf,
  ciScopesRecord,
  confirmedCiCustody,
  short,
  unconfirmedCiRecipients,
  breakglassToRecord,
  recipientsToRecord,
  requireConfirmedCiRecipientOf,
  requireConfirmedCiRecipients,
} from './custody/scope-custody.js';
export { paths } from './model/paths.js';
export { mergeWrites, type FileWrite } from './model/file-write.js';
export {
  scopeDef,
  activeIntermediate,
  intermediateLost,
  trustBundleFiles,
  scopeTrust,
  awaitingRetire,
} from './trust/scope-trust.js';
export { effectWrites } from './rotation/effects.js';
export type { Mesh } from './model/mesh.js';
export { RELEASE_SECRET } from './model/mesh.js';
export {
  liveIntermediates,
  anchorsBy,
  crlSetOf,
  inRole,
  intermediateFiles,
  type IntermediateRole,
} from './trust/live.js';
export {
  allowListDigest,
  allowListChanges,
  confirmedAllowList,
} from './config/deploy-allow-list.js';
export {
  confirmedPolicy,
  policyRecord,
  requireConfirmedPolicy,
  unconfirmedPolicyChanges,
} from './custody/signing-policy.js';
export { meshCollisions, heldServices, collisionRefusal, describeCollision } from './trust/uniqueness.js';
export { requireConfirmedAllowList, resolveDeployTargets } from './custody/allow-list.js';
export { looseStdoutRefusal, octalMode, outDirRefusal } from './custody/out-paths.js';
export { custodyRefusal, hostKeyRequests, keyProofStatement, meshHostKeys } from './custody/host-keys.js';
export { certificateRequestPem } from './x509/csr.js';
export type { HostKeyRequest } from './x509/csr.js';
export { verifyMesh, intermediateProblems, type Finding } from './verify/verify.js';
export { planRenew, planHostKeys, type RenewPlan } from './procedures/plan.js';
export {
  explainHandshake,
  recordParty,
  certificateParty,
  renderExplanation,
  STACKS,
  type Party,
  type Stack,
} from './verify/explain.js';
export { reportInput, renderReportHtml } from './report/report-html.js';
export {
  advanceScope,
  advanceRoot,
  nextGate,
  assertNoRootOverlap,
  type RootState,
  type RevokedIntermediate,
} from './rotation/rotation.js';
export {
  PROBE_RUNS_KEPT,
  assertFleetGateable,
  confirmedEndpoints,
  endpointsTrusting,
  issuingIntermediate,
  probeRunPath,
  probeService,
  probeSpiffeId,
  probeEvidence,
  fleetStatus,
  describeWaiting,
  serializeProbeRun,
  type Endpoint,
  type ProbeOutcome,
} from './rotation/fleet-gate.js';
export { serializeScopeState, serializeRootState } from './ledger/state-files.js';
export {
  nodeCryptoSeam,
  caKey,
  caKeyFromPem,
  signingKeyObject,
  type CryptoSeam,
  type CaKey,
  type LeafBatch,
  type LeafSigner,
} from './x509/seam.js';
export { anchorCrlOf, parseCrls, crlEntriesFor, displaySerial, type Revocation } from './x509/revocation.js';
export {
  certRef,
  evidenceFiles,
  evidencePaths,
  parseEvidence,
  procedureId,
  targetHosts,
  type Evidence,
} from './ledger/evidence.js';
export {
  isReleaseFile,
  edgeCrl,
  releaseCrlGaps,
  releaseFor,
  sealRelease,
  openSealedRelease,
  describeRelease,
  releaseFileBytes,
  type Release,
  type LeafFiles,
} from './trust/release.js';
export { renewMetrics, lastRenewSuccess } from './report/metrics.js';
export {
  caStamp,
  ceremonyState,
  intermediatePlan,
  planOrRefusal,
  renderCeremonySummary,
} from './rotation/ceremony-plan.js';
export {
  advancePhases,
  leafLifetimes,
  scopeCrlStaleness,
  scopeCrlWrite,
  ceremonyCrlWrite,
  renewScopes,
  renewTouched,
  staleBundleFiles,
  revokeLeaf,
  revocableLeaf,
  type ScopeKeys,
  type RenewResult,
  type PhaseStep,
} from './procedures/ci-procedures.js';
export { DEFAULT_HOST_POLICY, parseHostState, serializeHostState, type HostState } from './trust/host-trust.js';
export { assertShardWrites, composePlan, composeScopes, composeTouched, shardOwns } from './rotation/shard.js';
export { signCertificate as encodeCertificate } from './x509/certificates.js';
export { signCrl as encodeCrl } from './x509/revocation.js';
export { signBurnStatement, readBurnStatement } from './ledger/burn.js';
export {
  DEPLOY_RECORD_OP,
  releaseDigest,
  recordFor,
  onRecord,
  recordedReleases,
  recordedRelease,
  type RecordedTarget,
} from './ledger/deploy-record.js';
export { scopeTruststore, serviceKeystore, jvmCrlPem, jvmReleaseFiles } from './trust/jvm.js';
