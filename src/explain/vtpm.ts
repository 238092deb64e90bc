/**
 * The trust report for Google Cloud vTPM evidence (gce/vtpm.ts): who vouches for the quote (an AK
 * certificate under Google's EK/AK CA, or under roots the caller supplied), which instance it
 * names (the certificate's GCE instance identity), what booted (the vTPM's log, replayed by the
 * verifier to the quoted PCRs), and what the quote binds. The vTPM runs in Google's host, outside
 * the TEE (docs/trust-model.md): the report says so, in every case.
 *
 * Like explainClaims(), it explains and never appraises.
 */
import type { GceVtpmClaims } from '../evidence/gce/vtpm.js';
import { GOOGLE_VTPM_ROOTS } from '../evidence/gce/vtpm-roots.js';
import { badArgument, checkOptions, isPlainObject } from './args.js';

export interface VtpmExplainReport {
  format: 'gce-vtpm';
  /** Always true: vTPM claims exist only verified (verifyGceVtpm()). */
  verified: true;
  /** Whose device made the quote, and where it runs. */
  vtpm: { text: string };
  akCertificate: {
    issuer: string;
    serial: string;
    notBefore: string;
    notAfter: string;
    rootSha256: string;
    /** The chain ends at one of Google's EK/AK CA roots the library pins (false: roots the caller gave). */
    pinnedRoot: boolean;
    text: string;
  };
  instance: {
    projectId: string;
    projectNumber: string;
    zone: string;
    instanceId: string;
    instanceName: string;
    securityVersion: number | null;
    isProduction: boolean | null;
    text: string;
  };
  os: {
    /** The vTPM's boot log replayed to the quoted PCRs. */
    covered: boolean;
    measuredIn: 'pcrs';
    secureBoot: boolean | null;
    kernelCmdline: string | null;
    efiApps: Array<{ path: string | null; digest: string }> | null;
    /** 'sha256:PCR4', … : the quoted PCRs the log replays to. */
    matched: string[];
    /** Quoted PCRs the log does not explain. */
    unexplained: string[];
    anomalies: string[];
    text: string;
  };
  quote: {
    /** The quote's qualifyingData (hex): on a channel SHA-384 of the binder, else the verifier's nonce. */
    extraData: string;
    /** The PCR banks the quote covers. */
    banks: string[];
    text: string;
  };
  workloadPinned: boolean;
  summary: string[];
}

function isVtpmClaims(c: unknown): c is GceVtpmClaims {
  const x = c as Record<string, unknown>;
  return (
    isPlainObject(c) &&
    x.format === 'gce-vtpm' &&
    isPlainObject(x.gce) &&
    isPlainObject(x.tpm) &&
    typeof (x.tpm as Record<string, unknown>).extraData === 'string' &&
    isPlainObject(x.akCertificate) &&
    typeof x.workloadPinned === 'boolean'
  );
}

/**
 * Explains verified Google Cloud vTPM claims (verifyGceVtpm(), or a hardware report's
 * `claims.vtpm`). `options.nonceChecked`: the caller compared the quote's qualifyingData with its
 * nonce (or the channel with its binder); the report then says the quote is fresh.
 */
export function explainVtpm(
  claims: GceVtpmClaims,
  options: { nonceChecked?: boolean } = {},
): VtpmExplainReport {
  if (!isVtpmClaims(claims))
    throw badArgument('explainVtpm: claims must be the claims verifyGceVtpm() returned');
  const o = checkOptions('explainVtpm', options);
  if (o.nonceChecked !== undefined && typeof o.nonceChecked !== 'boolean')
    throw badArgument('explainVtpm: options.nonceChecked must be a boolean');

  const vtpm = {
    text: "vTPM: Google Cloud's virtual TPM, which runs in Google's host, outside the TEE: what it says is trusted as far as Google's vTPM and its EK/AK CA are, not vouched for by the CPU.",
  };

  const ak = claims.akCertificate;
  const pinnedRoot = GOOGLE_VTPM_ROOTS.some((r) => r.sha256 === ak.rootSha256);
  const akCertificate = {
    ...ak,
    pinnedRoot,
    text: `AK certificate: serial ${ak.serial}, issued by "${ak.issuer}", valid ${ak.notBefore} to ${ak.notAfter}, under ${
      pinnedRoot
        ? "Google's EK/AK CA root pinned by the library"
        : `a root given by the caller (SHA-256 ${ak.rootSha256.slice(0, 16)}…), not Google's pinned one`
    }; the quote is signed by the key it certifies.`,
  };

  const g = claims.gce;
  const instance = {
    projectId: g.projectId,
    projectNumber: g.projectNumber,
    zone: g.zone,
    instanceId: g.instanceId,
    instanceName: g.instanceName,
    securityVersion: g.securityVersion ?? null,
    isProduction: g.isProduction ?? null,
    text: `Instance: "${g.instanceName}" (id ${g.instanceId}) in project ${g.projectId} (number ${g.projectNumber}), zone ${g.zone}, as Google's CA wrote it into the AK certificate${
      g.isProduction === false ? '; the vTPM says it is NOT a production instance' : ''
    }. A policy's gce section pins it; it names the VM, not what runs in it.`,
  };

  const boot = claims.boot;
  let os: VtpmExplainReport['os'];
  if (boot) {
    const matched = Object.entries(boot.pcrs ?? {}).flatMap(([bank, v]) =>
      Object.keys(v).map((i) => `${bank}:PCR${i}`),
    );
    const secureBoot = boot.interpreted ? boot.secureBoot : null;
    const kernelCmdline = boot.interpreted ? boot.kernelCmdline : null;
    const efiApps = boot.interpreted
      ? (boot.efiApps ?? []).map((a) => ({ path: a.path, digest: a.digest }))
      : null;
    const anomalies = boot.anomalies.map((a) => a.kind);
    os = {
      covered: true,
      measuredIn: 'pcrs',
      secureBoot,
      kernelCmdline,
      efiApps,
      matched,
      unexplained: [...boot.unexplained],
      anomalies,
      text: `Your OS: measured by the vTPM — its boot log replays to ${matched.join(', ')} (${boot.events} events, digests verified ${boot.digestsVerified}); Secure Boot ${
        secureBoot === null ? 'not measured' : secureBoot ? 'on' : 'OFF'
      }; kernel command line ${kernelCmdline === null ? 'not measured' : JSON.stringify(kernelCmdline)}; EFI applications ${
        efiApps === null
          ? 'not read'
          : efiApps.length === 0
            ? 'none'
            : efiApps.map((a) => a.path ?? '?').join(', ')
      }${anomalies.length ? `; anomalies: ${[...new Set(anomalies)].join(', ')}` : ''}.`,
    };
  } else {
    os = {
      covered: false,
      measuredIn: 'pcrs',
      secureBoot: null,
      kernelCmdline: null,
      efiApps: null,
      matched: [],
      unexplained: [],
      anomalies: [],
      text: "Your OS: NOT covered — the quoted PCRs measure the boot, but no boot log came to read them (give the vTPM's log: --event-log).",
    };
  }

  const banks = Object.keys(claims.tpm.pcrs);
  const quote = {
    extraData: claims.tpm.extraData,
    banks,
    text: `Quote: over the ${banks.join(', ')} PCR bank${banks.length === 1 ? '' : 's'}, qualifyingData ${
      claims.tpm.extraData.length > 32
        ? `${claims.tpm.extraData.slice(0, 32)}…`
        : claims.tpm.extraData || '(empty)'
    }${
      o.nonceChecked === true
        ? ', checked against the expected nonce: the quote is fresh.'
        : ' — NOT compared with a nonce here: the quote is not known to be fresh (a channel checks it is SHA-384 of its binder).'
    }`,
  };

  const pinText = claims.workloadPinned
    ? 'Policy: what booted was pinned by the policy the vTPM evidence passed.'
    : 'Policy: what booted was NOT pinned (no boot pins applied to the vTPM log) — `attested-channel policy --tpm-quote …` writes one.';
  return {
    format: 'gce-vtpm',
    verified: true,
    vtpm,
    akCertificate,
    instance,
    os,
    quote,
    workloadPinned: claims.workloadPinned,
    summary: [vtpm.text, akCertificate.text, instance.text, os.text, quote.text, pinText],
  };
}
