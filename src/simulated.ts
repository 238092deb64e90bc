/// <reference types="node" preserve="true" />
// `attested-channel/simulated`: the simulated SEV-SNP and TDX platforms and their test roots, for
// tests and demos. A subpath of its own because the simulator carries published private keys: the
// package root (src/index.ts) never loads this module, so production code cannot sign with them
// or come to trust them by accident. Documented in docs/api.md (#attested-channelsimulated).

export {
  type AmdCrlOptions,
  type SimulatedAzureOptions,
  type SimulatedAzureProvider,
  type SimulatedIntelCert,
  type SimulatedSnpOptions,
  type SimulatedTcb,
  type SimulatedTcbStatus,
  type SimulatedTdxOptions,
  simulated,
} from './evidence/providers/simulated.js';
