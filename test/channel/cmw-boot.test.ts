/** The measured-boot records of a CMW collection: the CCEL beside a TDX quote, Google's vTPM beside either report. */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCmw, encodeCmw, MediaType, REPORT_MEDIA_TYPES } from '../../src/channel/cmw.js';
import { AttestationError } from '../../src/errors.js';
import { simulated } from '../../src/evidence/providers/simulated.js';
import type { EvidenceInput } from '../../src/evidence/types.js';
import { fixture } from '../eventlog/fixtures.js';
import { thrownCode as codeOf } from '../helpers/codes.js';

const DIR = new URL('../fixtures/gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/', import.meta.url);
const file = (n: string) => new Uint8Array(readFileSync(new URL(n, DIR)));
const gce = fixture('go-tpm-tools__gce-cos-85-nonce9009');
const cos = fixture('go-eventlog__cos-113-intel-tdx');
const RD = new Uint8Array(64).fill(4);
const vtpm = () => ({
  akCert: file('ak-cert.der'),
  akPublic: file('ak-public.tpmt'),
  tpm: {
    quote: file('quote-sha256.msg'),
    signature: file('quote-sha256.sig'),
    pcrs: JSON.parse(readFileSync(new URL('pcrs.json', DIR), 'utf8')),
  },
  eventLog: { log: gce.log },
});

const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe('CMW measured-boot records', () => {
  it('a TDX quote with its CCEL and table, and the vTPM records, round-trip', async () => {
    const ev: EvidenceInput = {
      ...(await simulated.tdx().getEvidence(RD)),
      eventLog: { log: cos.log, ccel: true, ccelTable: cos.table! },
      vtpm: vtpm(),
    };
    const wire = JSON.parse(JSON.stringify(encodeCmw(ev, 'tdx')));
    expect(wire.ccel[0]).toBe(MediaType.CCEL);
    const back = decodeCmw(wire, REPORT_MEDIA_TYPES).input;
    expect(back.eventLog!.ccel).toBe(true);
    expect(eq(back.eventLog!.log, cos.log) && eq(back.eventLog!.ccelTable!, cos.table!)).toBe(true);
    expect(eq(back.vtpm!.akCert as Uint8Array, ev.vtpm!.akCert as Uint8Array)).toBe(true);
    expect(eq(back.vtpm!.tpm.quote, ev.vtpm!.tpm.quote)).toBe(true);
    expect(back.vtpm!.tpm.pcrs).toEqual(ev.vtpm!.tpm.pcrs);
    expect(eq(back.vtpm!.eventLog!.log, gce.log)).toBe(true);
  });

  it('refuses partial, misplaced or oversized records', async () => {
    const snp = await simulated.snp().getEvidence(RD);
    const good = JSON.parse(JSON.stringify(encodeCmw({ ...snp, vtpm: vtpm() }, 'sev-snp')));
    expect(decodeCmw(good, REPORT_MEDIA_TYPES).input.vtpm).toBeDefined();
    for (const drop of ['vtpm-ak-cert', 'vtpm-quote', 'vtpm-signature', 'vtpm-pcrs']) {
      const c = { ...good };
      delete c[drop];
      expect(codeOf(() => decodeCmw(c, REPORT_MEDIA_TYPES))).toBe('ERR_EVIDENCE_MALFORMED');
    }
    const b64 = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
    const cases = [
      { ...good, ccel: [MediaType.CCEL, b64(cos.log)] }, // a CCEL beside an SNP report
      { ...good, 'vtpm-pcrs': [MediaType.JSON, b64('[1]')] },
      { ...good, 'vtpm-pcrs': [MediaType.JSON, b64('{')] },
      { ...good, 'vtpm-quote': [MediaType.TPM_QUOTE, b64(new Uint8Array(4097))] },
      {
        ...good,
        'vtpm-event-log': [MediaType.TPM_EVENT_LOG, 'A'.repeat(Math.ceil((4 * 1024 * 1024 * 4) / 3) + 4)],
      },
      { ...good, 'vtpm-ak-cert': [MediaType.PKIX_CERT, b64(new Uint8Array([0x30, 0x05, 1]))] },
      { ...good, 'vtpm-quote': [MediaType.JSON, good['vtpm-quote'][1]] },
    ];
    for (const c of cases)
      expect(codeOf(() => decodeCmw(c, REPORT_MEDIA_TYPES))).toBe('ERR_EVIDENCE_MALFORMED');
    const tdx = JSON.parse(JSON.stringify(encodeCmw(await simulated.tdx().getEvidence(RD), 'tdx')));
    expect(
      codeOf(() =>
        decodeCmw({ ...tdx, 'ccel-table': [MediaType.CCEL_TABLE, b64(cos.table!)] }, REPORT_MEDIA_TYPES),
      ),
    ).toBe('ERR_EVIDENCE_MALFORMED');
  });

  it('a provider that returns a TPM log with the report itself is refused when encoding', async () => {
    const snp = await simulated.snp().getEvidence(RD);
    expect(codeOf(() => encodeCmw({ ...snp, eventLog: { log: gce.log } }, 'sev-snp'))).toBe(
      'ERR_PROVIDER_FAILED',
    );
  });

  it('arbitrary record values under the measured-boot labels give typed errors only', async () => {
    const snp = JSON.parse(JSON.stringify(encodeCmw(await simulated.snp().getEvidence(RD), 'sev-snp')));
    const labels = [
      'ccel',
      'ccel-table',
      'vtpm-ak-cert',
      'vtpm-ak-public',
      'vtpm-quote',
      'vtpm-signature',
      'vtpm-pcrs',
      'vtpm-event-log',
    ];
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.constantFrom(...labels),
          fc.tuple(fc.constantFrom(...Object.values(MediaType)), fc.base64String()),
        ),
        (records) => {
          try {
            decodeCmw({ ...snp, ...records }, REPORT_MEDIA_TYPES);
          } catch (err) {
            expect(err).toBeInstanceOf(AttestationError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
