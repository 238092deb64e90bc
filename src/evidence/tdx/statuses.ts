/** TDX TCB statuses as Intel names them (PCS TCB Info v3, Intel's QVL). */

/** The statuses a level of Intel's TCB Info can carry, best first (Intel's names). */
export const TDX_LEVEL_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
] as const;

/**
 * Statuses only a verifier computes: Intel's QVL "TD relaunch advised" refinement for TD report
 * 1.5 (the TD runs on an out-of-date module the platform has since updated).
 */
export const TDX_RELAUNCH_STATUSES = ['TDRelaunchAdvised', 'TDRelaunchAdvisedConfigurationNeeded'] as const;
