/**
 * `attested-channel measure snp …`: the SEV-SNP launch measurement a VM built from these inputs
 * will report, to pin in a policy. Exit 0 with the measurement, 1 when the inputs cannot be
 * measured (unreadable file, firmware without SEV metadata, …), 2 for a usage error. With
 * --json every outcome is one JSON object on stdout.
 */
import { AttestationError } from '../errors.js';
import { snpSvsmLaunchDigest } from '../measure/modes.js';
import { snpLaunchDigest, VCPU_SIGNATURES, VMM_TYPES, type VmmType } from '../measure/snp.js';
import { type CliIo, parseOptions } from './io.js';

const USAGE = `usage: attested-channel measure snp --ovmf FILE --vcpus N (--vcpu-type TYPE | --vcpu-sig 0xHEX)
         --vmm-type qemu|ec2|gce [--kernel FILE [--initrd FILE] [--append CMDLINE]]
         [--guest-features 0xHEX] [--snp-ovmf-hash HEX] [--svsm FILE --vars-size N] [--json]

Computes the SEV-SNP launch MEASUREMENT (report offset 0x90) of a VM started with this firmware,
these vCPUs and, for a measured direct boot, this kernel, initrd and command line.

  --ovmf FILE            the OVMF image the VMM loads (whole file)
  --vcpus N              number of vCPUs (1 to 65535)
  --vcpu-type TYPE       QEMU CPU model: ${Object.keys(VCPU_SIGNATURES).join(', ')}
  --vcpu-sig 0xHEX       CPUID Fn0000_0001_EAX signature instead of --vcpu-type
                         (ec2 and gce ignore both: their VMSAs carry 0x600)
  --vmm-type T           qemu, ec2 (AWS) or gce (Google Cloud)
  --kernel FILE          direct boot: the -kernel file (needs a firmware with SNP_KERNEL_HASHES)
  --initrd FILE          direct boot: the -initrd file
  --append CMDLINE       direct boot: the kernel command line
  --guest-features 0xHEX SEV_FEATURES of the VMSAs (default 0x1; Linux hosts from 6.6 use 0x21)
  --snp-ovmf-hash HEX    the digest after the firmware pages, computed before (skips hashing them)
  --svsm FILE            boot through this COCONUT-SVSM image (qemu only; no direct boot; the
                         SVSM's VMSAs carry guest features 0x1 whatever --guest-features says)
  --vars-size N          with --svsm: bytes of the OVMF variable store between SVSM and firmware
  --json                 print {"ok": true, "measurement": …, "inputs": {…}} (or {"ok": false, "error": …})
`;

const OPTIONS = {
  ovmf: { type: 'string' },
  vcpus: { type: 'string' },
  'vcpu-type': { type: 'string' },
  'vcpu-sig': { type: 'string' },
  'vmm-type': { type: 'string' },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  append: { type: 'string' },
  'guest-features': { type: 'string' },
  'snp-ovmf-hash': { type: 'string' },
  svsm: { type: 'string' },
  'vars-size': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

class UsageError extends Error {}

function hexNumber(value: string, name: string): bigint {
  if (!/^0x[0-9a-f]{1,16}$/i.test(value))
    throw new UsageError(`${name} takes a 0x-prefixed hex value (got ${JSON.stringify(value)})`);
  return BigInt(value);
}

export async function run(args: string[], io: CliIo): Promise<number> {
  const json = args.includes('--json');
  const failed = (code: number, error: { code: string; message: string; details?: unknown }): number => {
    if (json) io.out(`${JSON.stringify({ ok: false, error })}\n`);
    else
      io.err(
        `attested-channel: ${code === 2 ? '' : `${error.code}: `}${error.message}\n${code === 2 ? `\n${USAGE}` : ''}`,
      );
    return code;
  };
  const usage = (message: string) => failed(2, { code: 'ERR_INVALID_ARGUMENT', message });

  const [kind, ...rest] = args;
  if (kind === '--help' || kind === '-h') {
    io.out(USAGE);
    return 0;
  }
  if (kind !== 'snp')
    return usage(
      kind === undefined || kind.startsWith('-')
        ? 'measure needs a TEE: snp'
        : `unknown TEE "${kind}" (only snp)`,
    );

  let values: {
    [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
  };
  try {
    const parsed = parseOptions(rest, OPTIONS);
    values = parsed.values;
  } catch (err) {
    return usage((err as Error).message);
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }

  let vmmType: VmmType;
  let vcpus: number;
  let guestFeatures: bigint;
  let vcpuSignature: number | undefined;
  let firmwareDigest: Uint8Array | undefined;
  try {
    if (values.ovmf === undefined) throw new UsageError('--ovmf is required');
    if (values.vcpus === undefined) throw new UsageError('--vcpus is required');
    if (!/^[0-9]{1,6}$/.test(values.vcpus))
      throw new UsageError(`--vcpus takes a decimal count (got ${JSON.stringify(values.vcpus)})`);
    vcpus = Number(values.vcpus);
    const vmm = values['vmm-type']?.toLowerCase();
    if (vmm === undefined) throw new UsageError('--vmm-type is required (qemu, ec2 or gce)');
    if (!(VMM_TYPES as readonly string[]).includes(vmm))
      throw new UsageError(`unknown --vmm-type ${JSON.stringify(values['vmm-type'])} (qemu, ec2 or gce)`);
    vmmType = vmm as VmmType;
    if (values['vcpu-type'] !== undefined && values['vcpu-sig'] !== undefined)
      throw new UsageError('give --vcpu-type or --vcpu-sig, not both');
    if (values['vcpu-type'] !== undefined && !Object.hasOwn(VCPU_SIGNATURES, values['vcpu-type']))
      throw new UsageError(
        `unknown --vcpu-type ${JSON.stringify(values['vcpu-type'])} (known: ${Object.keys(VCPU_SIGNATURES).join(', ')})`,
      );
    if (values['vcpu-sig'] !== undefined) {
      const sig = hexNumber(values['vcpu-sig'], '--vcpu-sig');
      if (sig > 0xffffffffn) throw new UsageError('--vcpu-sig must fit in 32 bits');
      vcpuSignature = Number(sig);
    }
    if (vmmType === 'qemu' && values['vcpu-type'] === undefined && vcpuSignature === undefined)
      throw new UsageError('--vmm-type qemu needs --vcpu-type or --vcpu-sig');
    guestFeatures =
      values['guest-features'] === undefined ? 0x1n : hexNumber(values['guest-features'], '--guest-features');
    if (values.kernel === undefined && values.initrd !== undefined)
      throw new UsageError('--initrd needs --kernel');
    if (values.kernel === undefined && values.append !== undefined && values.append !== '')
      throw new UsageError('--append needs --kernel');
    if (values['snp-ovmf-hash'] !== undefined) {
      if (!/^[0-9a-f]{96}$/i.test(values['snp-ovmf-hash']))
        throw new UsageError('--snp-ovmf-hash takes 96 hex digits');
      firmwareDigest = new Uint8Array(Buffer.from(values['snp-ovmf-hash'], 'hex'));
    }
    if (values.svsm !== undefined) {
      if (values['vars-size'] === undefined || !/^[0-9]{1,10}$/.test(values['vars-size']))
        throw new UsageError('--svsm needs --vars-size N (decimal bytes)');
      if (vmmType !== 'qemu') throw new UsageError('--svsm is for --vmm-type qemu only');
      if (values.kernel !== undefined)
        throw new UsageError('--svsm takes no --kernel (no measured direct boot)');
      if (firmwareDigest) throw new UsageError('--svsm takes no --snp-ovmf-hash');
    } else if (values['vars-size'] !== undefined) throw new UsageError('--vars-size needs --svsm');
  } catch (err) {
    if (err instanceof UsageError) return usage(err.message);
    throw err;
  }

  if (values.svsm !== undefined) {
    try {
      const m = await snpSvsmLaunchDigest({
        ovmf: values.ovmf,
        svsm: values.svsm,
        ovmfVarsSize: Number(values['vars-size']),
        vcpus,
        ...(values['vcpu-type'] !== undefined ? { vcpuType: values['vcpu-type'] } : {}),
        ...(vcpuSignature !== undefined ? { vcpuSignature } : {}),
      });
      const measurement = Buffer.from(m).toString('hex');
      if (!json) io.out(`${measurement}\n`);
      else {
        const inputs = {
          mode: 'snp-svsm',
          ovmf: values.ovmf,
          svsm: values.svsm,
          varsSize: Number(values['vars-size']),
          vcpus,
          vcpuType: values['vcpu-type'] ?? null,
          vcpuSignature: `0x${(vcpuSignature ?? VCPU_SIGNATURES[values['vcpu-type']!]!).toString(16)}`,
          vmmType,
          guestFeatures: '0x1',
        };
        io.out(`${JSON.stringify({ ok: true, measurement, inputs }, null, 2)}\n`);
      }
      return 0;
    } catch (err) {
      const e =
        err instanceof AttestationError ? err : new AttestationError('ERR_INVALID_ARGUMENT', String(err));
      return failed(1, e.toJSON());
    }
  }

  try {
    const r = await snpLaunchDigest({
      ovmf: values.ovmf,
      vcpus,
      vmmType,
      ...(values['vcpu-type'] !== undefined ? { vcpuType: values['vcpu-type'] } : {}),
      ...(vcpuSignature !== undefined ? { vcpuSignature } : {}),
      ...(values.kernel !== undefined ? { kernel: values.kernel } : {}),
      ...(values.initrd !== undefined ? { initrd: values.initrd } : {}),
      ...(values.append !== undefined ? { append: values.append } : {}),
      guestFeatures,
      ...(firmwareDigest ? { firmwareDigest } : {}),
    });
    const measurement = Buffer.from(r.measurement).toString('hex');
    if (!json) {
      io.out(`${measurement}\n`);
      return 0;
    }
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    const h32 = (n: number | undefined) => (n === undefined ? null : `0x${n.toString(16)}`);
    const inputs = {
      mode: 'snp',
      ovmf: values.ovmf,
      vcpus,
      vcpuType: values['vcpu-type'] ?? null,
      vcpuSignature: h32(
        vcpuSignature ?? (values['vcpu-type'] ? VCPU_SIGNATURES[values['vcpu-type']] : undefined),
      ),
      vmmType,
      kernel: values.kernel ?? null,
      initrd: values.initrd ?? null,
      append: values.append ?? null,
      guestFeatures: `0x${r.guestFeatures.toString(16)}`,
      rdx: h32(r.rdx),
      firmwareDigest: hex(r.firmwareDigest),
      firmware: {
        size: r.firmware.size,
        sha384: r.firmware.sha384 ? hex(r.firmware.sha384) : null,
        gpa: h32(r.firmware.gpa),
        sevEsResetEip: h32(r.firmware.sevEsResetEip),
        sevHashesTableGpa: h32(r.firmware.sevHashesTableGpa),
        sections: r.firmware.sections.map((s) => ({ type: s.type, gpa: h32(s.gpa), size: h32(s.size) })),
      },
      kernelHashes: r.kernelHashes
        ? {
            cmdline: hex(r.kernelHashes.cmdline),
            initrd: hex(r.kernelHashes.initrd),
            kernel: hex(r.kernelHashes.kernel),
          }
        : null,
    };
    io.out(`${JSON.stringify({ ok: true, measurement, inputs }, null, 2)}\n`);
    return 0;
  } catch (err) {
    const e =
      err instanceof AttestationError ? err : new AttestationError('ERR_INVALID_ARGUMENT', String(err));
    return failed(1, e.toJSON());
  }
}
