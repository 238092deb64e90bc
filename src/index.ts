// The whole public API, as flat named exports. Each export is documented in docs/api.md.
export { AttestationError, ERROR_CODES, type ErrorCode } from './errors.js';
export { type Policy, parsePolicy, type SnpPolicy, type TdxPolicy } from './evidence/policy.js';
export type {
  Claims,
  CollateralFetchOptions,
  EvidenceFormat,
  EvidenceInput,
  EvidenceProvider,
  SnpClaims,
  SnpGuestPolicy,
  SnpPlatformInfo,
  TcbVersion,
  TdxClaims,
  TdxCollateral,
  TdxTcbStatus,
  TrustAnchors,
  VerifyOptions,
} from './evidence/types.js';
export { detectFormat, verifyEvidence } from './evidence/verify.js';
