// Releases: open (a Hugging Face folder with card, licence and checksums), closed (an encrypted bundle served from
// memory), hybrid (an open base and an encrypted LoRA adapter), their release records, and verification. See docs/release.md.
export {
  BUNDLE_FORMAT, BUNDLE_VERSION, bundleContent, canonicalJson, checkBundle, loadBundledModel, MANIFEST, openBundle, readManifest, sealBundle, sealFiles,
} from './bundle.js';
export type { BundleContent, BundledModel, BundleFileEntry, BundleManifest, OpenedBundle, SealFilesOptions, SealOptions, SealResult } from './bundle.js';
export { cardMetadata, datasetLabel, indexMetrics, renderCard, splitFrontMatter } from './card.js';
export type { CardInput, CardModelInfo } from './card.js';
export { contentHash, contentHashOfFiles, MODEL_FILE_NAMES, modelFiles, readModelFiles, sha256Hex } from './files.js';
export {
  ADAPTER_FILE_NAMES, adapterFromFiles, HYBRID_ADAPTER, HYBRID_BASE, loadAdapterBundle, readAdapterFiles, releaseHybrid,
} from './hybrid.js';
export type { HybridReleaseOptions, HybridReleaseResult } from './hybrid.js';
export { KEY_ENV, keyId, MIN_SECRET_BYTES, readSecret, SCRYPT_DEFAULTS, writeNewKeyFile } from './key.js';
export type { Secret } from './key.js';
export { LICENSE_IDS, LICENSES, normalizeLicenseId, resolveLicense } from './licenses.js';
export type { ResolvedLicense } from './licenses.js';
export { causalLMFromFiles, chatTemplateFromFiles, modelFromFiles, tokenizerFromFiles } from './memory.js';
export type { InMemoryModel } from './memory.js';
export { releaseOpen, SUMS_FILE } from './open.js';
export type { OpenReleaseOptions, OpenReleaseResult } from './open.js';
export { appendReleaseRecord, listReleases, readReleaseRecords, RELEASES_FILE } from './records.js';
export type { ListedRelease, ReleaseRecord } from './records.js';
export { appendResult, hasMetrics, readResults, readTrainingArgs, RESULTS_FILE } from './results.js';
export type { ResultRecord } from './results.js';
export { verifyRelease } from './verify.js';
export type { VerifyResult } from './verify.js';
export { AUDIT_FILE, auditRecord, DEFAULT_EXPOSURE_MARGIN, exposureRefusal, readAuditRecord, writeAuditRecord } from './audit.js';
export type { AuditRecord } from './audit.js';
