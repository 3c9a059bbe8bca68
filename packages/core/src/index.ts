/** @trellis/core: the model, rules and store of a trellis mesh. Root-signing code is not here: it lives in @trellis/offline. */
export { TrellisError, isTrellisError, REASON_EXIT_CODES, type Reason } from './errors.js';
export { parseDuration, formatDuration, parseInstant, iso, MAX_DURATION_MS, CLOCK_SKEW_MS, notYetValid, assertNowNotAhead } from './time.js';
export * from './names.js';
export { parseMeshConfig, serializeMeshConfig, ciRecipientIn, parseScope, parseDeployAllowList, isNormalizedPath, describeTarget, toYaml, MESH_DEFAULTS, POLICY_CEILINGS,
  type MeshConfig, type ScopeDef, type ServiceDef, type ScopeKind, type DeployTarget, type DeploySelection, type DeployAllowList, type SshHostEntry,
} from './config.js';
export {
  KEY_ALGORITHMS, randomSerial, exportPrivateKeyPem, importSigningKey, privateKeyAlgorithm, publicKeyDerOf, sha256Hex, pemEncode, pemDecodeAll,
  type KeyAlgorithm, type CryptoSeam,
} from './crypto.js';
export { parseCertificate, parseCertificates, certificatePem, fingerprint, keyId, signedBy, type IssueParams, subjectAltNames, spkiDer, isSelfIssued, keyMatchesCert, type Certificate } from './certificates.js';
export { encodeNameConstraints, decodeNameConstraints, nameConstraintsExtension } from './name-constraints.js';
export { PROFILES, extensionsFor, validityWithin, assertSignsAt, MAX_NOT_AFTER, type SigningIssuer, renewalPoint, assertNamesInside, profileViolations, lacksIpExclusion, BACKDATE_MS, type Tier, type Profile } from './profiles.js';
export { leafDue, leafNames, issuedBy, type ActiveIssuer, parseIssuanceRecord, serializeIssuanceRecord, type LeafRecord, type IssuanceRecord, type DueReason } from './issuance.js';
export { mintLeaf, leafTemplateFor, leafBatch, mintedFromBatch, signInProcess, signingKeyObject, type MintedLeaf, type SigningIntermediate, type LeafRequest, type LeafBatch, type LeafSigner } from './leaf.js';
export { leafTbs, leafKeyPair, signLeaves, LEAF_SECRET_BYTES, type LeafTemplate, type LeafOrder, type EncodedLeaf } from './leaf-template.js';
export { trustedScopes, composeTrust, composeTrustByScope, trustPem, trustOpensslPem, parseTrustOpensslPem, anchorFileSet, CAPATH_DIR, ANCHORS_DIR, type ScopedAnchor } from './trust.js';
export { subjectHash, subjectDer, canonicalNameEncoding } from './subject-hash.js';
export { appendToLedger, ledgerProblems, ledgerHead, ledgerFingerprints, parseLedger, canonicalJson, unsignedAfterSigned, type LedgerEntry, type LedgerDraft, type Created } from './ledger.js';
export { ledgerSigner, entrySignatureValid, type LedgerSigner, type EntrySigner } from './ledger-signature.js';
export { rootLedgerTrust, rootLedgerTrustOf, rootClockBound, scopeLedgerTrust, lastConfirmedRecord, assertLedgerCounts, type LedgerTrust, type RootLedgerTrust } from './ledger-trust.js';
export { leafCreated, leafRecordProblems, issuanceRecordProblems, issuanceBinding, assertIssuanceProven, mintedFor, provenLeafRecord, scopeStateProblems, rootStateProblems, evidencePathProblem, type RecordProblem } from './record-proofs.js';
export { readPlainYaml, writePlainYaml } from './plain-yaml.js';
export { verifyLedgers } from './verify-ledgers.js';
export {
  assertCiPosture, assertNoBreakglass, assertBreakglassPosture, assertRootPosture, assertAgentPosture, assertDrillPosture, assertClockNotBehindLedger, childEnv, quoteInput, quotePeerOutput, readIdentities, requireIdentities, validateRecipients, encryptTo, tryDecrypt, decryptWith, newIdentity, recipientOf, ageStanzaCount, ageStanzaTypes, isPq,
  type Env, type IdentityKind, type Decrypted,
} from './custody.js';
export { SHARE_MAGIC, combineShares, parseShare, parseSharesSpec, recipientFingerprint, splitIdentity, type IdentityShare } from './shares.js';
export { reencrypt, withRecipients } from './rekey.js';
export {
  assertIdentityScoped, ciKeyFiles, ciRecipientOf, ciScopesRecord, confirmedCiCustody, configuredCiCustody, sameCiCustody, short, unconfirmedCiRecipients, type CiCustody,
} from './scope-custody.js';
export { ageFilesIn } from './verify/retired.js';
export { Store, findStore, writeFileAtomic, mergeWrites, STORE_FILE, readBounded, READ_LIMITS, holdsStore, type FileWrite } from './store.js';
export { writePoint, faultEnv, adoptFaultCount, type WritePointKind } from './fault-seam.js';
export { assertOutsideTrackedTree, checkOutDir, checkOutFile, makeOutDir, writeOutFile, type OutPath } from './out-path.js';
export { loadMesh, paths, scopeDef, activeIntermediate, activeIssuer, intermediateLost, trustBundleFiles, scopeAnchorFiles, scopeTrust, trustedScopeNames, awaitingRetire, effectWrites, type Mesh, type ScopeMaterial } from './mesh.js';
export { liveIntermediates, anchorsOf, anchorsBy, crlSetOf, inRole, intermediateFiles, materialOf, type LiveIntermediate, type IntermediateRole } from './live.js';
export {
  EMPTY_ALLOW_LIST, allowListDigest, allowListChanges, confirmedAllowList, requireConfirmedAllowList, resolveTarget, resolveDeployTargets, isRefusal,
  type Confirmation, type Refusal,
} from './deploy-allow-list.js';
export { confirmedPolicy, policyRecord, requireConfirmedPolicy, unconfirmedPolicyChanges, type SigningPolicy } from './signing-policy.js';
export { deployFindings } from './verify-deploy.js';
export {
  ownershipCollisions, meshCollisions, heldServices, ownershipFindings, collisionRefusal, describeCollision, collisionHint, canonicalDns, canonicalDir, canonicalSpiffe,
  type Collision, type ClaimKind, type Owner, type OwnershipInput,
} from './uniqueness.js';
export { verifyMesh, custodyFindings, intermediateProblems, worstLevel, EXPIRY_WARNING, ROOT_CRL_WARNING, type Finding, type Level } from './verify.js';
export { planRenew, meshStatus, type RenewPlan, type RenewItem, type MeshStatus, type ScopeStatus, type LeafState } from './plan.js';
export { renderFindings, renderStatus } from './report.js';
export { explainHandshake, recordParty, certificateParty, renderExplanation, type Explanation, type Direction, type Check, type Party, type PresentedLeaf, type AnchorRef } from './explain.js';
export { reportInput, renderReportHtml, escapeHtml, type ReportInput } from './report-html.js';
export { refuseRepeatedFlags } from './flags.js';
export { buildInfo, isSelfContainedBuild, renderVersion, versionCommand, type BuildInfo } from './build-info.js';
export { runMain, rawStderr, clock, checkNowFlag, NOW_AHEAD_OPTION, openStore, withStore, actor, onlineInterfaces, failAsUsage, isMachineFailure, ioFailure, EXIT_CODES_HELP } from './shell.js';
export {
  advanceScope, advanceRoot, nextGate, describeGate, assertNoRootOverlap,
  type ScopeState, type ScopePhase, type ScopeEvent, type ScopeEffect, type RootState, type RootEvent, type RootEffect, type RevokedLeaf, type RevokedIntermediate, type Transition, type LeafLifetimes,
} from './rotation.js';
export { parseScopeState, serializeScopeState, parseRootState, serializeRootState } from './state-files.js';
export { nodeCryptoSeam } from './seam.js';
export { signAnchorCrl, type CrlParams, crlOf, anchorCrlOf, parseCrls, crlSignedBy, crlEntriesFor, crlStaleness, crlReason, crlNumber, serialKey, type Crl, type CrlEntry, type Revocation } from './revocation.js';
export {
  certRef, evidenceFiles, evidencePaths, parseEvidence, procedureId, recordRemint, renderEvidenceMarkdown, serializeEvidence,
  type Evidence, type EvidenceStep, type CertRef,
} from './evidence.js';
export { NAMES_ONLY_CA, RELEASE_FILES, isReleaseFile, edgeCrl, releaseCrlGaps, releaseFor, sealRelease, openSealedRelease, describeRelease, type Release, type ReleaseFile, type SealedRelease, type OpenedRelease, type LeafFiles } from './release.js';
export { statusCommand, verifyCommand } from './inspect-commands.js';
export { checkCommand, thresholdsFrom, writeMetricsFile } from './check-command.js';
export { meshHealth, summaryLine, renderHealth, NAGIOS, DEFAULT_THRESHOLDS, type MeshHealth, type HealthItem, type HealthLevel, type Thresholds } from './health.js';
export { healthMetrics, renewMetrics, lastRenewSuccess, type RenewRun } from './metrics.js';
export { caStamp, ceremonyState, intermediatePlan, pendingScopes, planOrRefusal, renderCeremonySummary, type IntermediatePlan } from './ceremony-plan.js';
export {
  advancePhases, leafLifetimes, scopeCrlStaleness, scopeCrlWrite, ceremonyCrlWrite, mintScopeLeaves, renewScopes, renewTouched, staleBundleFiles, revokeLeaf, revocableLeaf,
  type CrlSigner, type ScopeKeys, type PhaseStep, type RenewInput, type RenewResult,
} from './procedures.js';
export { DEFAULT_HOST_POLICY, parseHostState, serializeHostState, type HostState, type HostPolicy } from './host-trust.js';
export { assertShardWrites, composePlan, composeScopes, composeTouched, shardOwns, spanningFiles } from './shard.js';
// The default encoders, for a seam that signs elsewhere (a PKCS#11 token) and passes its own WebCrypto provider.
export { signCertificate as encodeCertificate } from './certificates.js';
export { signCrl as encodeCrl } from './revocation.js';
export { signBurnStatement, readBurnStatement, type Burn } from './burn.js';
export { pkcs12Truststore, pkcs12Keystore, pkcs12Kdf, anchorAlias, type TrustedEntry } from './pkcs12.js';
export { scopeTruststore, serviceKeystore, jvmCrlPem } from './jvm.js';
