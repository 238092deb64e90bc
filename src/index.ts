/// <reference types="node" preserve="true" />
// The public API, as flat named exports. Each export is documented in docs/api.md. The simulated
// platform is not here: it is the `attested-channel/simulated` subpath (src/simulated.ts).
// The reference on the first line is kept in dist/index.d.ts: the declarations use Node's types (Duplex,
// X509Certificate, Buffer...), and TypeScript 6+ no longer loads @types/node unless asked to.

export {
  type BatchedEvidence,
  type BatchOptions,
  BatchScheduler,
  type BatchSetting,
  type BatchStats,
  createBatchScheduler,
  DEFAULT_BATCH_SIZE,
} from './channel/batch-scheduler.js';
export { AttestedChannel } from './channel/channel.js';
export { type AttestedConnectOptions, attestedConnect } from './channel/connect.js';
export type { PeerClaims } from './channel/exchange.js';
export type { FrameLimits } from './channel/frames.js';
export {
  type CreateTlsIdentityOptions,
  createTlsIdentity,
  identityFrom,
  type TlsIdentity,
} from './channel/identity.js';
export type { ChannelOptions, ChannelVerifyOptions, Role } from './channel/options.js';
export {
  AttestedServer,
  type AttestedServerEvents,
  type AttestedServerOptions,
  createAttestedServer,
  type DropInfo,
  type PeerAddress,
} from './channel/server.js';
export {
  type AttachWebSocketOptions,
  attachWebSocket,
  connectWebSocket,
  DEFAULT_WEBSOCKET_MAX_PAYLOAD,
  type DuplexAcceptor,
  type WebSocketAttachment,
  type WebSocketConnectOptions,
} from './channel/websocket.js';
export { AttestationError, ERROR_CODES, type ErrorCode } from './errors.js';
export { azureQuoteNonce, checkAzureBinding } from './evidence/azure/binding.js';
export { type HclReport, parseHclReport, type RuntimeClaims } from './evidence/azure/hcl.js';
export type { AzureEvidenceInput, AzureVerifyOptions } from './evidence/azure/verify.js';
export {
  appraiseBoot,
  type BootClaims,
  bootClaims,
  type EventLogInput,
  type VerifiedRegisters,
} from './evidence/boot.js';
export {
  type Anomaly,
  type AnomalyKind,
  type BootSummary,
  type BootSummaryOptions,
  bootSummary,
  type CcelTable,
  checkReplay,
  type DecodedEvent,
  type DigestCheck,
  type EfiApp,
  type EventLog,
  type EventLogKind,
  type ExpectedRegisters,
  type LogEvent,
  MAX_EVENT_COUNT,
  MAX_EVENT_DATA_SIZE,
  MAX_EVENT_LOG_SIZE,
  type ParseEventLogOptions,
  parseCcelTable,
  parseEventLog,
  type ReplayCheck,
  type ReplayedRegisters,
  replayEventLog,
  type SignatureEntry,
} from './evidence/eventlog/index.js';
export {
  CollateralFetcher,
  type CollateralFetcherOptions,
  type FetchResult,
} from './evidence/fetch.js';
export {
  GCE_ENDORSEMENT_CERT_TABLE_GUID,
  GCE_TCB_ROOT_SHA256,
  type LaunchEndorsement,
  type VerifyLaunchEndorsementOptions,
  verifyLaunchEndorsement,
} from './evidence/gce/endorsement.js';
export {
  checkGceVtpmBinding,
  GCE_INSTANCE_INFO_OID,
  type GceInstanceInfo,
  type GceVtpmClaims,
  type GceVtpmInput,
  type GceVtpmRoots,
  type GceVtpmVerifyOptions,
  gceVtpmQuoteNonce,
  parseGceInstanceInfo,
  splitTpmRoots,
  verifyGceVtpm,
} from './evidence/gce/vtpm.js';
export type { CacheStats } from './evidence/lru.js';
export {
  type AzurePolicy,
  type BootPolicy,
  type GcePolicy,
  type Policy,
  parsePolicy,
  REUSE_MAX_EVIDENCE_AGE,
  type ReusePolicy,
  type SnpPolicy,
  type TdxPolicy,
} from './evidence/policy.js';
export {
  AZURE_IMDS_URL,
  type AzureVtpmOptions,
  type AzureVtpmProvider,
  azureVtpm,
} from './evidence/providers/azure-vtpm.js';
export { combine } from './evidence/providers/combine.js';
export {
  type ConfigfsTsmOptions,
  configfsTsm,
  DEFAULT_CCEL_PATHS,
  type TsmFileSystem,
} from './evidence/providers/configfs-tsm.js';
export {
  GCE_AK_NV,
  type GceVtpmOptions,
  gceVtpm,
  TPM_EVENT_LOG_PATH,
  type TpmQuoteEvidence,
  type TpmQuoteOptions,
  type TpmQuoteProvider,
  tpmQuote,
} from './evidence/providers/tpm-quote.js';
export { SNP_CACHE_SIZES } from './evidence/snp/format.js';
export { AMD_KDS_URL, KdsClient } from './evidence/snp/kds.js';
export { parseSnpReport, type SnpReport } from './evidence/snp/report.js';
export { PINNED_ARK_SHA256, type SnpProduct } from './evidence/snp/roots.js';
export { TDX_CACHE_SIZES } from './evidence/tdx/format.js';
export { PcsClient, type PcsClientOptions } from './evidence/tdx/pcs.js';
export { parseTdxQuote, type QeReport, type TdReportBody, type TdxQuote } from './evidence/tdx/quote.js';
export { INTEL_SGX_ROOT_CA_DER, INTEL_SGX_ROOT_CA_SHA256 } from './evidence/tdx/roots.js';
export {
  parseTpmsAttest,
  parseTpmtSignature,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_QUOTE,
  type TpmsAttest,
  type TpmtSignature,
} from './evidence/tpm/attest.js';
export type { PcrBankName, PcrSelection } from './evidence/tpm/marshal.js';
export {
  type PcrValues,
  type TpmQuoteClaims,
  type TpmQuoteInput,
  type VerifiedTpmQuote,
  verifyTpmQuote,
} from './evidence/tpm/quote.js';
export type {
  AzureClaims,
  AzureCommonClaims,
  AzureSnpClaims,
  AzureTdxClaims,
  BatchedClaim,
  Claims,
  CollateralFetchOptions,
  EvidenceFormat,
  EvidenceInput,
  EvidenceProvider,
  EvidenceRequestOptions,
  ProviderFormat,
  RevocationCrl,
  RevocationStatus,
  SnpClaims,
  SnpGuestPolicy,
  SnpPlatformInfo,
  TcbVersion,
  TdxClaims,
  TdxCollateral,
  TdxTcbStatus,
  TrustAnchors,
  Verifier,
  VerifierCallOptions,
  VerifierOptions,
  VerifierStats,
  VerifyOptions,
} from './evidence/types.js';
export { TDX_LEVEL_STATUSES, TDX_RELAUNCH_STATUSES } from './evidence/types.js';
export { CERTIFICATE_CACHE_SIZE, createVerifier, VERIFIER_MEMORY_BOUND_BYTES } from './evidence/verifier.js';
export { DEFAULT_VERIFIERS, detectFormat, verifyAzure, verifyEvidence } from './evidence/verify.js';
export {
  type ExplainableClaims,
  type ExplainOptions,
  type ExplainReport,
  explainClaims,
} from './explain/explain.js';
export { KNOWN_IMAGES, type KnownImage, knownImage } from './explain/known-images.js';
export {
  DEFAULT_PCRS,
  finishPolicy,
  formatPolicy,
  type MeasureResult,
  mergePolicyDrafts,
  type PolicyDraft,
  type PolicyFromClaimsOptions,
  type PolicyFromEndorsementOptions,
  policyFromBootSummary,
  policyFromClaims,
  policyFromEndorsement,
  policyFromMeasurement,
  policyFromVtpmClaims,
} from './explain/policy-builder.js';
export { parsedClaims } from './explain/unverified.js';
export { explainVtpm, type VtpmExplainReport } from './explain/vtpm.js';
export {
  AttestedAgent,
  type AttestedHttpOptions,
  attestedAgent,
  attestedConnector,
  type UndiciConnectCallback,
  type UndiciConnectOptions,
} from './http/agent.js';
export { peerClaims, serveHttp } from './http/server.js';
export {
  type SevLaunchDigestOptions,
  type SnpSvsmLaunchDigestOptions,
  sevLaunchDigest,
  snpSvsmLaunchDigest,
} from './measure/modes.js';
export {
  type MeasureSource,
  type SnpLaunchDigest,
  type SnpLaunchDigestOptions,
  snpLaunchDigest,
  VCPU_SIGNATURES,
  type VmmType,
} from './measure/snp.js';
