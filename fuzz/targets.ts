/**
 * Every parser and decoder the fuzz harness drives, one entry each (issue 10, "Fuzzing and leaks").
 * A new parser (TPM quote, event log, HCL report, ...) is one more entry in TARGETS: its seeds (real
 * fixtures), how to mutate one, and how to run the library on the result.
 *
 * Imports come from the built package (dist/), which is what users run.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { type CmwCollection, decodeCmw, encodeCmw, REPORT_MEDIA_TYPES } from '../dist/channel/cmw.js';
import {
  encodeAlert,
  encodeEvidence,
  encodeFrame,
  encodeRequest,
  encodeResult,
  FrameDecoder,
  FrameType,
  parseAlert,
  parseEvidence,
  parseRequest,
  parseResult,
} from '../dist/channel/frames.js';
import { Session } from '../dist/channel/session.js';
import { AttestationError } from '../dist/errors.js';
import { parseHclReport, parseRuntimeClaims } from '../dist/evidence/azure/hcl.js';
import { parsePolicy } from '../dist/evidence/policy.js';
import { simulated } from '../dist/evidence/providers/simulated.js';
import { vekExtensions } from '../dist/evidence/snp/certs.js';
import { parseSnpReport } from '../dist/evidence/snp/report.js';
import { normaliseCollateral } from '../dist/evidence/tdx/collateral.js';
import { parseSgxExtensions } from '../dist/evidence/tdx/pck.js';
import { parseTdxQuote } from '../dist/evidence/tdx/quote.js';
import { parseQeIdentity, parseTcbInfo } from '../dist/evidence/tdx/tcb.js';
import { parseTpmsAttest } from '../dist/evidence/tpm/attest.js';
import type { TdxCollateral } from '../dist/evidence/types.js';
import { TDX_LEVEL_STATUSES } from '../dist/evidence/types.js';
import { verifyEvidence } from '../dist/evidence/verify.js';
import { parseCertificate } from '../dist/evidence/x509/cert.js';
import { parseCrl } from '../dist/evidence/x509/crl.js';
import { derToPem, pemToDer } from '../dist/evidence/x509/pem.js';
import {
  bootSummary,
  GCE_INSTANCE_INFO_OID,
  parseCcelTable,
  parseEventLog,
  parseGceInstanceInfo,
  replayEventLog,
  verifyGceVtpm,
} from '../dist/index.js';
import { ALL_BYTE, derLengthOffsets, IN_PLACE, mutateBytes, mutateText, Rng } from './mutate.js';

export interface Prepared<T> {
  seeds: T[];
  mutate(rng: Rng, seed: T, seedIndex: number): T;
  /** Runs the library on one input; a refusal is an AttestationError (anything else is a crash). */
  run(input: T): unknown;
  /**
   * Signed data: `run` returning means the library ACCEPTED the input, which is a finding unless
   * `unchanged(input)` (the signed and DER bytes are exactly the fixture's).
   */
  unchanged?: (input: T) => boolean;
}

export interface FuzzTarget {
  name: string;
  /** Inputs at --scale 1. */
  inputs: number;
  /** Wall-clock budget at --scale 1, ms: the target stops at whichever comes first. */
  budgetMs: number;
  prepare(): Promise<Prepared<unknown>> | Prepared<unknown>;
}

// ---- fixtures -------------------------------------------------------------------------------

const FIXTURES = new URL('../test/fixtures/', import.meta.url);
const read = (path: string): Uint8Array => new Uint8Array(readFileSync(new URL(path, FIXTURES)));
const readText = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');
const dirs = (path: string): string[] =>
  readdirSync(new URL(path, FIXTURES), { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name);
const has = (path: string): boolean => {
  try {
    readFileSync(new URL(path, FIXTURES));
    return true;
  } catch {
    return false;
  }
};

interface SnpVector {
  report: Uint8Array;
  vek: Uint8Array;
  ask: Uint8Array;
  ark: Uint8Array;
  at: Date;
}
function snpVectors(): SnpVector[] {
  return dirs('snp/')
    .filter((d) => d !== 'roots')
    .map((d) => ({
      report: read(`snp/${d}/report.bin`),
      vek: read(`snp/${d}/vek.der`),
      ask: read(`snp/${d}/ask.der`),
      ark: read(`snp/${d}/ark.der`),
      at: new Date(JSON.parse(readText(`snp/${d}/meta.json`)).suggested_verify_at),
    }));
}

interface TdxVector {
  quote: Uint8Array;
  collateral?: TdxCollateral;
  at: Date;
}
function tdxVectors(): TdxVector[] {
  return dirs('tdx/').map((d) => {
    const meta = JSON.parse(readText(`tdx/${d}/meta.json`));
    return {
      quote: read(`tdx/${d}/quote.bin`),
      ...(has(`tdx/${d}/collateral.json`)
        ? { collateral: JSON.parse(readText(`tdx/${d}/collateral.json`)) as TdxCollateral }
        : {}),
      at: new Date(meta.evaluate_at),
    };
  });
}

function certificates(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const v of snpVectors()) out.push(v.vek, v.ask, v.ark);
  for (const f of readdirSync(new URL('snp/roots/', FIXTURES)))
    if (f.endsWith('.der')) out.push(read(`snp/roots/${f}`));
  for (const f of readdirSync(new URL('intel/', FIXTURES)))
    if (f.endsWith('.der') && !f.includes('crl')) out.push(read(`intel/${f}`));
  // PCK certificates and chains as they travel inside quotes and collateral.
  for (const v of tdxVectors()) {
    if (!v.collateral) continue;
    out.push(...pemToDer(v.collateral.pck_crl_issuer_chain), ...pemToDer(v.collateral.tcb_info_issuer_chain));
  }
  for (const q of tdxVectors()) out.push(...pemChainsIn(q.quote).flatMap((t) => pemToDer(t)));
  return dedupe(out);
}

/** The PEM certification data inside a quote (type 5), found by its markers. */
function pemChainsIn(quote: Uint8Array): string[] {
  const text = Buffer.from(quote).toString('latin1');
  const start = text.indexOf('-----BEGIN CERTIFICATE-----');
  const end = text.lastIndexOf('-----END CERTIFICATE-----');
  return start < 0 || end < 0 ? [] : [text.slice(start, end + '-----END CERTIFICATE-----'.length)];
}

function crls(): Uint8Array[] {
  const out = [
    read('intel/IntelSGXRootCA_crl_2023-04-03.der'),
    read('intel/IntelSGXRootCA_crl_2025-03-20.der'),
  ];
  for (const v of tdxVectors()) {
    if (!v.collateral) continue;
    out.push(Buffer.from(v.collateral.root_ca_crl, 'hex'), Buffer.from(v.collateral.pck_crl, 'hex'));
  }
  // AMD's CRL format (RSA-PSS), from the simulator: no real AMD CRL is among the fixtures.
  out.push(simulated.amdCrl({ revoked: [new Uint8Array([1, 2, 3])] }));
  return dedupe(out.map((b) => new Uint8Array(b)));
}

function dedupe(list: Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  return list.filter((b) => {
    const k = Buffer.from(b).toString('base64');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const POLICIES = [
  '{}',
  JSON.stringify({ snp: { measurements: ['ab'.repeat(48)] } }),
  JSON.stringify({
    snp: {
      measurements: ['ab'.repeat(48), 'cd'.repeat(48)],
      allowDebug: false,
      allowMigrationAgent: false,
      minTcb: { bootloader: 3, tee: 0, snp: 20, microcode: 200, fmc: 1 },
      chipIds: ['00'.repeat(64), '11'.repeat(8)],
      vmpls: [0, 1],
      hostData: ['ee'.repeat(32)],
      idKeyDigests: ['ff'.repeat(48)],
      minGuestSvn: 2,
      signers: ['vcek', 'vlek'],
      requireCrl: true,
    },
  }),
  JSON.stringify({
    tdx: {
      mrTd: ['aa'.repeat(48)],
      rtmr0: ['bb'.repeat(48)],
      rtmr1: ['bb'.repeat(48)],
      rtmr2: ['bb'.repeat(48)],
      rtmr3: ['00'.repeat(48)],
      mrConfigId: ['00'.repeat(48)],
      mrOwner: ['00'.repeat(48)],
      mrOwnerConfig: ['00'.repeat(48)],
      mrSeam: ['cc'.repeat(48)],
      allowDebug: false,
      acceptTcbStatus: ['UpToDate', 'SWHardeningNeeded'],
      allowServiceTd: false,
      requireSeptVeDisable: true,
    },
  }),
  JSON.stringify({ $schema: 'x', comment: 'both', snp: {}, tdx: { acceptTcbStatus: ['UpToDate'] } }),
];

// ---- helpers --------------------------------------------------------------------------------

const text = (rng: Rng, seed: string, all: string[]) => mutateText(rng, seed, all);

/** Refuses a "refusal" that is really a bug: ERR_INTERNAL is how the library reports one. */
function noInternal(err: AttestationError): void {
  if (err.code === 'ERR_INTERNAL') throw err.cause ?? err;
}

function frameStream(): Uint8Array[] {
  const ctx = new Uint8Array(32).fill(7);
  const [snp] = snpVectors();
  const tdx = tdxVectors().find((v) => v.collateral)!;
  const snpCmw: CmwCollection = encodeCmw(
    { report: snp!.report, vek: snp!.vek, chain: [snp!.ask, snp!.ark] },
    'sev-snp',
  );
  const tdxCmw: CmwCollection = encodeCmw({ report: tdx.quote, collateral: tdx.collateral! }, 'tdx');
  const req = encodeRequest(ctx, REPORT_MEDIA_TYPES);
  return [
    Buffer.concat([req, encodeEvidence(ctx, snpCmw), encodeResult(ctx)]),
    Buffer.concat([req, encodeEvidence(ctx, tdxCmw)]),
    Buffer.concat([
      encodeResult(ctx, { code: 'ERR_EVIDENCE_POLICY', reason: 'measurement' }),
      encodeAlert('ERR_EVIDENCE_POLICY', 'no'),
    ]),
    Buffer.concat([encodeFrame(FrameType.DATA, new Uint8Array(300).fill(1)), encodeRequest(ctx, [])]),
  ].map((b) => new Uint8Array(b));
}

/** Splits `bytes` into chunks the way TLS records might arrive: whole, random sizes, or one byte each. */
function chunks(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  const mode = rng.int(4);
  if (mode === 0) return [bytes];
  const out: Uint8Array[] = [];
  for (let p = 0; p < bytes.length; ) {
    const n = mode === 1 ? 1 : mode === 2 ? 1 + rng.int(64) : 1 + rng.int(4096);
    out.push(bytes.subarray(p, p + n));
    p += n;
  }
  return out;
}

function decodeFrames(parts: Uint8Array[]): void {
  const decoder = new FrameDecoder({ maxControlPayload: 1 << 20 });
  for (const part of parts) {
    for (const f of decoder.push(part)) {
      if (f.type === FrameType.REQUEST) parseRequest(f.payload);
      else if (f.type === FrameType.EVIDENCE)
        decodeCmw(parseEvidence(f.payload).evidence, REPORT_MEDIA_TYPES);
      else if (f.type === FrameType.RESULT) parseResult(f.payload);
      else if (f.type === FrameType.ALERT) parseAlert(f.payload);
    }
  }
}

// ---- the table --------------------------------------------------------------------------------

export const TARGETS: FuzzTarget[] = [
  {
    name: 'snp-report',
    inputs: 250_000,
    budgetMs: 90_000,
    prepare() {
      const seeds = snpVectors().map((v) => v.report);
      return {
        seeds,
        mutate: (rng, s) => mutateBytes(rng, s as Uint8Array, seeds),
        run: (b) => parseSnpReport(b as Uint8Array),
      };
    },
  },
  {
    name: 'tdx-quote',
    inputs: 250_000,
    budgetMs: 90_000,
    prepare() {
      const seeds = tdxVectors().map((v) => v.quote);
      return {
        seeds,
        mutate: (rng, s) => mutateBytes(rng, s as Uint8Array, seeds),
        run: (b) => parseTdxQuote(b as Uint8Array),
      };
    },
  },
  {
    name: 'certificate',
    inputs: 15_000,
    budgetMs: 180_000,
    prepare() {
      const seeds = certificates();
      const offsets = seeds.map(derLengthOffsets);
      return {
        seeds,
        mutate: (rng, s, i) => mutateBytes(rng, s as Uint8Array, seeds, ALL_BYTE, undefined, offsets[i]),
        run(b) {
          const cert = parseCertificate(b as Uint8Array);
          // The vendor extension decoders run on every certificate that parses.
          for (const decode of [vekExtensions, parseSgxExtensions]) {
            try {
              decode(cert);
            } catch (err) {
              if (!(err instanceof AttestationError)) throw err;
            }
          }
          return cert;
        },
      };
    },
  },
  {
    name: 'crl',
    inputs: 15_000,
    budgetMs: 120_000,
    prepare() {
      const seeds = crls();
      const offsets = seeds.map(derLengthOffsets);
      return {
        seeds,
        mutate: (rng, s, i) => mutateBytes(rng, s as Uint8Array, seeds, ALL_BYTE, undefined, offsets[i]),
        run: (b) => parseCrl(b as Uint8Array),
      };
    },
  },
  {
    name: 'pem',
    inputs: 80_000,
    budgetMs: 60_000,
    prepare() {
      const seeds = [
        ...certificates()
          .slice(0, 8)
          .map((d) => derToPem(d)),
        ...tdxVectors().flatMap((v) => pemChainsIn(v.quote)),
        `${derToPem(certificates()[0]!)}\0`,
      ];
      return { seeds, mutate: (rng, s) => text(rng, s as string, seeds), run: (t) => pemToDer(t as string) };
    },
  },
  {
    name: 'tcb-info',
    inputs: 80_000,
    budgetMs: 60_000,
    prepare() {
      const seeds = tdxVectors().flatMap((v) => (v.collateral ? [v.collateral.tcb_info] : []));
      return {
        seeds,
        mutate: (rng, s) => text(rng, s as string, seeds),
        run: (t) => parseTcbInfo(t as string),
      };
    },
  },
  {
    name: 'qe-identity',
    inputs: 80_000,
    budgetMs: 60_000,
    prepare() {
      const seeds = tdxVectors().flatMap((v) => (v.collateral ? [v.collateral.qe_identity] : []));
      return {
        seeds,
        mutate: (rng, s) => text(rng, s as string, seeds),
        run: (t) => parseQeIdentity(t as string),
      };
    },
  },
  {
    name: 'collateral-json',
    inputs: 40_000,
    budgetMs: 60_000,
    prepare() {
      const seeds = tdxVectors().flatMap((v) => (v.collateral ? [JSON.stringify(v.collateral)] : []));
      return {
        seeds,
        mutate: (rng, s) => text(rng, s as string, seeds),
        run: (t) => normaliseCollateral(t as string),
      };
    },
  },
  {
    name: 'cmw',
    inputs: 60_000,
    budgetMs: 90_000,
    prepare() {
      // The EVIDENCE payload as it arrives: JSON text holding the context and the CMW collection.
      const seeds = frameStream()
        .slice(0, 2)
        .map((s) => {
          const payloads: string[] = [];
          const d = new FrameDecoder();
          for (const f of d.push(s))
            if (f.type === FrameType.EVIDENCE) payloads.push(Buffer.from(f.payload).toString());
          return payloads[0]!;
        });
      return {
        seeds,
        mutate: (rng, s) => text(rng, s as string, seeds),
        run: (t) => decodeCmw(parseEvidence(Buffer.from(t as string)).evidence, REPORT_MEDIA_TYPES),
      };
    },
  },
  {
    name: 'frames',
    inputs: 60_000,
    budgetMs: 60_000,
    prepare() {
      const seeds = frameStream();
      return {
        seeds,
        mutate: (rng, s) => ({ bytes: mutateBytes(rng, s as Uint8Array, seeds), rng: rng.next() }),
        run(input) {
          const { bytes, rng } = input as { bytes: Uint8Array; rng: number };
          decodeFrames(chunks(new Rng(rng), bytes));
        },
      } as Prepared<unknown>;
    },
  },
  {
    name: 'session',
    inputs: 60_000,
    budgetMs: 60_000,
    prepare() {
      // A server-side session after the TLS handshake, fed the peer's (mutated) bytes.
      const seeds = frameStream();
      let n = 0;
      return {
        seeds,
        mutate: (rng, s) => mutateBytes(rng, s as Uint8Array, seeds),
        run(b) {
          const session = new Session({
            role: n++ % 2 === 0 ? 'server' : 'client',
            accept: REPORT_MEDIA_TYPES,
            produces: 'application/vnd.amd.sev-snp.attestation-report',
            exchangeTimeoutMs: 1000,
            random: () => new Uint8Array(32).fill(n & 0xff),
          });
          const actions = [...session.handle({ type: 'start', handshakeMs: 1000 })];
          actions.push(...session.handle({ type: 'bytes', chunk: b as Uint8Array }));
          for (const a of actions) if (a.type === 'fail') noInternal(a.error);
        },
      };
    },
  },
  {
    name: 'event-log',
    inputs: 20_000,
    budgetMs: 90_000,
    prepare() {
      // TPM (TCG2) logs and TDX CCEL logs, parsed, replayed and summarised as a verifier would.
      const seeds: Array<{ bytes: Uint8Array; ccel: boolean }> = [];
      for (const d of dirs('eventlog/')) {
        if (has(`eventlog/${d}/eventlog.bin`))
          seeds.push({ bytes: read(`eventlog/${d}/eventlog.bin`), ccel: false });
        if (has(`eventlog/${d}/ccel.bin`)) seeds.push({ bytes: read(`eventlog/${d}/ccel.bin`), ccel: true });
      }
      const all = seeds.map((x) => x.bytes);
      return {
        seeds,
        mutate: (rng, s) => {
          const seed = s as (typeof seeds)[number];
          return { bytes: mutateBytes(rng, seed.bytes, all), ccel: seed.ccel };
        },
        run(input) {
          const { bytes, ccel } = input as (typeof seeds)[number];
          const log = parseEventLog(bytes, ccel ? { ccel: true } : {});
          replayEventLog(log);
          return bootSummary(log);
        },
      } as Prepared<unknown>;
    },
  },
  {
    name: 'gce-vtpm-signed',
    inputs: 20_000,
    budgetMs: 60_000,
    prepare() {
      // The real Google Cloud vTPM attestation: AK certificate, quote, signature and event log,
      // one of them changed in place. The log's bytes outside what a digest covers may change
      // without a refusal (event data that is not hashed), so only its digests count as signed.
      const dir = 'gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/';
      const base = {
        akCert: read(`${dir}ak-cert.der`),
        quote: read(`${dir}quote-sha256.msg`),
        signature: read(`${dir}quote-sha256.sig`),
        log: read('eventlog/go-tpm-tools__gce-cos-85-nonce9009/eventlog.bin'),
      };
      const pcrs = JSON.parse(readText(`${dir}pcrs.json`));
      type V = typeof base & { changed: boolean };
      const at = new Date('2021-12-22T00:00:00Z');
      return {
        seeds: [{ ...base, changed: false }],
        mutate(rng, s) {
          const v = s as V;
          const which = rng.pick(['akCert', 'quote', 'signature'] as const);
          const m = { ...v, [which]: mutateBytes(rng, v[which], [], IN_PLACE) };
          return { ...m, changed: Buffer.compare(m[which], base[which]) !== 0 };
        },
        run(input) {
          const v = input as V;
          return verifyGceVtpm(
            {
              akCert: v.akCert,
              tpm: { quote: v.quote, signature: v.signature, pcrs },
              eventLog: { log: v.log },
            },
            { now: at, expectedExtraData: new Uint8Array([0x90, 0x09]) },
          );
        },
        unchanged: (input) => !(input as V).changed,
      } as Prepared<unknown>;
    },
  },
  {
    name: 'gce-instance-info',
    inputs: 50_000,
    budgetMs: 30_000,
    prepare() {
      const cert = parseCertificate(read('gce-vtpm/go-tpm-tools__gce-cos-85-nonce9009/ak-cert.der'));
      const seeds = [new Uint8Array(cert.extensions.get(GCE_INSTANCE_INFO_OID)!.value)];
      return {
        seeds,
        mutate: (rng, s) => mutateBytes(rng, s as Uint8Array, seeds),
        run: (b) => parseGceInstanceInfo(b as Uint8Array),
      };
    },
  },
  {
    name: 'ccel-table',
    inputs: 50_000,
    budgetMs: 30_000,
    prepare() {
      const seeds = dirs('eventlog/').flatMap((d) =>
        has(`eventlog/${d}/ccel-table.bin`) ? [read(`eventlog/${d}/ccel-table.bin`)] : [],
      );
      return {
        seeds,
        mutate: (rng, s) => mutateBytes(rng, s as Uint8Array, seeds),
        run: (b) => parseCcelTable(b as Uint8Array),
      };
    },
  },
  {
    name: 'hcl-report',
    inputs: 50_000,
    budgetMs: 45_000,
    prepare() {
      const seeds = dirs('azure/').flatMap((d) =>
        has(`azure/${d}/hcl-report.bin`) ? [read(`azure/${d}/hcl-report.bin`)] : [],
      );
      return {
        seeds,
        mutate: (rng, s) => mutateBytes(rng, s as Uint8Array, seeds),
        run: (b) => parseRuntimeClaims(parseHclReport(b as Uint8Array)),
      };
    },
  },
  {
    name: 'tpm-quote',
    inputs: 50_000,
    budgetMs: 45_000,
    prepare() {
      const seeds = dirs('azure/').flatMap((d) =>
        has(`azure/${d}/tpm-quote.msg`) ? [read(`azure/${d}/tpm-quote.msg`)] : [],
      );
      return {
        seeds,
        mutate: (rng, s) => mutateBytes(rng, s as Uint8Array, seeds),
        run: (b) => parseTpmsAttest(b as Uint8Array),
      };
    },
  },
  {
    name: 'policy',
    inputs: 150_000,
    budgetMs: 60_000,
    prepare() {
      return {
        seeds: POLICIES,
        mutate: (rng, s) => text(rng, s as string, POLICIES),
        run: (t) => parsePolicy(t as string),
      };
    },
  },
  {
    name: 'snp-signed',
    inputs: 20_000,
    budgetMs: 150_000,
    async prepare() {
      // Real reports with their VEK and chain, verified at their own time: every accepted
      // mutation is a finding unless no byte changed.
      const all = snpVectors();
      const seeds: SnpVector[] = [];
      const options = (v: SnpVector) => ({
        offline: true,
        now: v.at,
        policy: { snp: { allowDebug: true, allowMigrationAgent: true } },
      });
      for (const v of all) {
        try {
          await verifyEvidence({ report: v.report, vek: v.vek, chain: [v.ask, v.ark] }, options(v));
          seeds.push(v);
        } catch {
          // Only vectors that verify as they are can show an accepted mutation.
        }
      }
      const origin = new Map<SnpVector, SnpVector>();
      return {
        seeds,
        mutate(rng, s) {
          const v = s as SnpVector;
          const which = rng.pick(['report', 'report', 'report', 'vek', 'ask', 'ark'] as const);
          const m: SnpVector = {
            ...v,
            [which]: mutateBytes(rng, v[which], [], rng.chance(0.9) ? IN_PLACE : ALL_BYTE),
          };
          origin.set(m, v);
          return m;
        },
        async run(input) {
          const v = input as SnpVector;
          return verifyEvidence({ report: v.report, vek: v.vek, chain: [v.ask, v.ark] }, options(v));
        },
        unchanged(input) {
          const v = input as SnpVector;
          const o = origin.get(v)!;
          origin.delete(v);
          return (['report', 'vek', 'ask', 'ark'] as const).every((k) => Buffer.compare(v[k], o[k]) === 0);
        },
      } as Prepared<unknown>;
    },
  },
  {
    name: 'tdx-signed',
    inputs: 30_000,
    budgetMs: 120_000,
    async prepare() {
      const policy = { tdx: { allowDebug: true, acceptTcbStatus: [...TDX_LEVEL_STATUSES] } };
      const seeds: Array<TdxVector & { signedLength: number }> = [];
      for (const v of tdxVectors()) {
        if (!v.collateral) continue;
        try {
          await verifyEvidence(
            { report: v.quote, collateral: v.collateral },
            { offline: true, now: v.at, policy },
          );
          // Bytes after the signature data are not part of the quote (the fixtures' README): only
          // the quote proper is mutated in place.
          const q = parseTdxQuote(v.quote) as unknown as { length?: number };
          seeds.push({ ...v, signedLength: typeof q.length === 'number' ? q.length : signedLength(v.quote) });
        } catch {
          // Vectors whose TCB cannot be matched never verify; they cannot show an acceptance.
        }
      }
      type Mutated = { quote: Uint8Array; collateral: TdxCollateral; at: Date; changed: boolean };
      return {
        seeds,
        mutate(rng, s) {
          const v = s as (typeof seeds)[number];
          if (rng.chance(0.6)) {
            const quote = mutateBytes(rng, v.quote, [], rng.chance(0.9) ? IN_PLACE : ['truncate'], [
              0,
              v.signedLength,
            ]);
            const changed = canonicalQuote(quote, v.signedLength) !== canonicalQuote(v.quote, v.signedLength);
            return { quote, collateral: v.collateral!, at: v.at, changed } satisfies Mutated;
          }
          const members = Object.keys(v.collateral!) as Array<keyof TdxCollateral>;
          const member = rng.pick(members);
          const collateral = { ...v.collateral!, [member]: mutateText(rng, v.collateral![member], []) };
          return {
            quote: v.quote,
            collateral,
            at: v.at,
            changed: canonical(member, collateral[member]) !== canonical(member, v.collateral![member]),
          } satisfies Mutated;
        },
        run(input) {
          const m = input as Mutated;
          return verifyEvidence(
            { report: m.quote, collateral: m.collateral },
            { offline: true, now: m.at, policy },
          );
        },
        unchanged: (input) => !(input as Mutated).changed,
      } as Prepared<unknown>;
    },
  },
];

/**
 * A collateral member as the bytes it stands for: hex is case-insensitive, and PEM is the DER it
 * holds (base64 line breaks are not data). tcbInfo and the QE identity are signed as text: as is.
 */
function canonical(member: keyof TdxCollateral, value: string): string {
  if (member.endsWith('_chain')) {
    try {
      return pemToDer(value)
        .map((d) => Buffer.from(d).toString('hex'))
        .join(',');
    } catch {
      return value;
    }
  }
  if (member.endsWith('_crl') || member.endsWith('_signature')) return value.toLowerCase();
  return value;
}

/**
 * A quote as the bytes it stands for: the quote proper, with its PEM PCK chain (certification data
 * type 5) replaced by the DER it holds, since PEM line breaks and base64 padding bits are not data.
 */
function canonicalQuote(quote: Uint8Array, length: number): string {
  const text = Buffer.from(quote.subarray(0, length)).toString('latin1');
  const start = text.indexOf('-----BEGIN');
  const end = text.lastIndexOf('-----END CERTIFICATE-----');
  if (start < 0 || end < 0) return text;
  try {
    const ders = pemToDer(text.slice(start, end + '-----END CERTIFICATE-----'.length));
    return `${text.slice(0, start)}${ders.map((d) => Buffer.from(d).toString('hex')).join(',')}${text.slice(end + 25)}`;
  } catch {
    return text;
  }
}

/** Header + body + 4-byte signature data length + that data: the bytes a quote consists of. */
function signedLength(quote: Uint8Array): number {
  const version = quote[0]! | (quote[1]! << 8);
  const view = new DataView(quote.buffer, quote.byteOffset, quote.byteLength);
  if (version === 4) return 48 + 584 + 4 + view.getUint32(632, true);
  // v5: header, u16 body type, u32 body size, body, u32 signature data length, data.
  const bodySize = view.getUint32(50, true);
  return 48 + 6 + bodySize + 4 + view.getUint32(54 + bodySize, true);
}
