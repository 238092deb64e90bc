/** Measured-boot event logs: parse (TCG PC Client, TDX CCEL), replay, check, summarise. */
export type { DecodedEvent, DigestCheck, HashName, SignatureEntry } from './decode.js';
export {
  type Anomaly,
  type AnomalyKind,
  type CcelTable,
  type EventLog,
  type EventLogKind,
  type LogEvent,
  MAX_EVENT_COUNT,
  MAX_EVENT_DATA_SIZE,
  MAX_EVENT_LOG_SIZE,
  type ParseEventLogOptions,
  parseCcelTable,
  parseEventLog,
  type SpecIdEvent,
} from './parse.js';
export {
  checkReplay,
  type ExpectedRegisters,
  type ReplayCheck,
  type ReplayedRegisters,
  replayEventLog,
} from './replay.js';
export { type BootSummary, type BootSummaryOptions, bootSummary, type EfiApp } from './summary.js';
