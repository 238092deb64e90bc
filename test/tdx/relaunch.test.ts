/**
 * Intel QVL's "TD relaunch advised" refinement for TD report 1.5 (TDRelaunchCheck.cpp), on TCB
 * infos built for each case: a TD on an out-of-date module that the platform has since updated
 * (TEE_TCB_SVN2 meets the latest level) is TDRelaunchAdvised, and only then.
 */
import { describe, expect, it } from 'vitest';
import { AttestationError } from '../../src/errors.js';
import type { SgxExtensions } from '../../src/evidence/tdx/pck.js';
import type { TdReportBody } from '../../src/evidence/tdx/quote.js';
import { evaluateTcb, type IdentityLevel, parseTcbInfo } from '../../src/evidence/tdx/tcb.js';

const ZEROS48 = '00'.repeat(48);
const svn16 = (...head: number[]) => [...head, ...new Array(16 - head.length).fill(0)];

interface Case {
  latestStatus?: string;
  olderStatus?: string;
  /** Module identity levels of TDX_01, newest first: [isvsvn, status]. */
  moduleLevels?: Array<[number, string]>;
  /** Also list an identity TDX_02 with these levels. */
  module2Levels?: Array<[number, string]>;
  teeTcbSvn?: number[];
  teeTcbSvn2?: number[] | null;
  qe?: IdentityLevel['status'];
}

function evaluate(c: Case) {
  const identity = (id: string, levels: Array<[number, string]>) => ({
    id,
    mrsigner: ZEROS48,
    attributes: '0000000000000000',
    attributesMask: 'FFFFFFFFFFFFFFFF',
    tcbLevels: levels.map(([isvsvn, tcbStatus]) => ({
      tcb: { isvsvn },
      tcbDate: '2025-01-01T00:00:00Z',
      tcbStatus,
    })),
  });
  const level = (tdx2: number, tcbStatus: string) => ({
    tcb: {
      sgxtcbcomponents: svn16(2, 2).map((svn) => ({ svn })),
      pcesvn: 10,
      tdxtcbcomponents: svn16(0, 0, tdx2).map((svn) => ({ svn })),
    },
    tcbDate: '2025-01-01T00:00:00Z',
    tcbStatus,
  });
  const info = parseTcbInfo(
    JSON.stringify({
      id: 'TDX',
      version: 3,
      issueDate: '2025-01-01T00:00:00Z',
      nextUpdate: '2025-02-01T00:00:00Z',
      fmspc: '00806F050000',
      pceId: '0000',
      tcbType: 0,
      tcbEvaluationDataNumber: 17,
      tdxModule: { mrsigner: ZEROS48, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
      tdxModuleIdentities: [
        identity(
          'TDX_01',
          c.moduleLevels ?? [
            [4, 'UpToDate'],
            [3, 'OutOfDate'],
          ],
        ),
        ...(c.module2Levels ? [identity('TDX_02', c.module2Levels)] : []),
      ],
      // The latest level wants component 2 at 6; the platform's TD runs with 5.
      tcbLevels: [level(6, c.latestStatus ?? 'UpToDate'), level(5, c.olderStatus ?? 'OutOfDate')],
    }),
  );
  const svn2 = c.teeTcbSvn2 === undefined ? svn16(4, 1, 6) : c.teeTcbSvn2;
  const body = {
    teeTcbSvn: Uint8Array.from(c.teeTcbSvn ?? svn16(3, 1, 5)),
    mrSignerSeam: new Uint8Array(48),
    seamAttributes: new Uint8Array(8),
    ...(svn2 ? { teeTcbSvn2: Uint8Array.from(svn2) } : {}),
  } as unknown as TdReportBody;
  const sgx: SgxExtensions = {
    ppid: new Uint8Array(16),
    fmspc: Buffer.from('00806F050000', 'hex'),
    ppidHex: '00'.repeat(16),
    fmspcHex: '00806f050000',
    pceId: new Uint8Array(2),
    sgxTcbComponents: svn16(2, 2),
    pceSvn: 10,
  };
  const qe: IdentityLevel = {
    isvSvn: 4,
    tcbDate: '2025-01-01T00:00:00Z',
    status: c.qe ?? 'UpToDate',
    advisoryIds: [],
  };
  return evaluateTcb(body, sgx, info, qe).status;
}

describe('TD relaunch advised (TD report 1.5)', () => {
  it('an out-of-date module the platform has updated: TDRelaunchAdvised', () => {
    expect(evaluate({})).toBe('TDRelaunchAdvised');
  });

  it('with configuration needed on the SGX or TDX side: TDRelaunchAdvisedConfigurationNeeded', () => {
    expect(evaluate({ latestStatus: 'ConfigurationNeeded' })).toBe('TDRelaunchAdvisedConfigurationNeeded');
    expect(evaluate({ latestStatus: 'ConfigurationAndSWHardeningNeeded' })).toBe(
      'TDRelaunchAdvisedConfigurationNeeded',
    );
    expect(evaluate({ olderStatus: 'OutOfDateConfigurationNeeded' })).toBe(
      'TDRelaunchAdvisedConfigurationNeeded',
    );
    expect(evaluate({ latestStatus: 'SWHardeningNeeded' })).toBe('TDRelaunchAdvised');
  });

  it('stays out of date when TEE_TCB_SVN2 does not meet the latest level', () => {
    expect(evaluate({ teeTcbSvn2: svn16(4, 1, 5) })).toBe('OutOfDate'); // component 2
    expect(evaluate({ teeTcbSvn2: svn16(3, 1, 6) })).toBe('OutOfDate'); // module SVN
  });

  it('stays out of date when the QE, the SGX level or the module does not allow it', () => {
    expect(evaluate({ qe: 'OutOfDate' })).toBe('OutOfDate');
    expect(evaluate({ latestStatus: 'OutOfDate' })).toBe('OutOfDate'); // SGX out of date
    // The module is up to date: the TDX components alone are behind, a relaunch changes nothing.
    expect(evaluate({ teeTcbSvn: svn16(4, 1, 5) })).toBe('OutOfDate');
  });

  it('does not apply to TD report 1.0 (no TEE_TCB_SVN2) or to a revoked level', () => {
    expect(evaluate({ teeTcbSvn2: null })).toBe('OutOfDate');
    expect(evaluate({ olderStatus: 'Revoked' })).toBe('Revoked');
  });

  it('TEE_TCB_SVN2 without a module version compares with the latest level alone', () => {
    expect(evaluate({ teeTcbSvn2: svn16(0, 0, 6) })).toBe('TDRelaunchAdvised');
    expect(evaluate({ teeTcbSvn2: svn16(0, 0, 5) })).toBe('OutOfDate');
  });

  it("TEE_TCB_SVN2 naming another module version uses that identity's newest level", () => {
    expect(evaluate({ teeTcbSvn2: svn16(2, 2, 6), module2Levels: [[2, 'UpToDate']] })).toBe(
      'TDRelaunchAdvised',
    );
    expect(evaluate({ teeTcbSvn2: svn16(1, 2, 6), module2Levels: [[2, 'UpToDate']] })).toBe('OutOfDate');
    expect(evaluate({ teeTcbSvn2: svn16(2, 2, 6), module2Levels: [] })).toBe('NoMatchingTcbLevel');
    let err: unknown;
    try {
      evaluate({ teeTcbSvn2: svn16(2, 2, 6) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AttestationError);
    expect((err as AttestationError).code).toBe('ERR_EVIDENCE_TCB');
    expect((err as AttestationError).details['tcbStatus']).toBe('TdxModuleMismatch');
  });
});
