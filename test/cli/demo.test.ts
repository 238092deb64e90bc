// The demo, run in-process as `attested-channel demo`: every step printed, both attacks refused with
// their codes, exit 0, and nothing left running afterwards.
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { leakCheck } from '../helpers/edges.js';

function capture(): {
  io: { out: (t: string) => void; err: (t: string) => void };
  out: () => string;
  err: () => string;
} {
  let out = '';
  let err = '';
  return {
    io: { out: (t) => (out += t), err: (t) => (err += t) },
    out: () => out,
    err: () => err,
  };
}

describe('attested-channel demo', () => {
  it('narrates the attestation, the round trip and both refusals, and exits 0', async () => {
    const leaks = leakCheck();
    const c = capture();
    const code = await main(['demo'], c.io);
    expect(c.err()).toBe('');
    expect(code).toBe(0);
    const out = c.out();
    // The steps, in order.
    const steps = ['[tls]', '[request]', '[evidence]', '[binder]', '[verify]', '[claims]', '[open]'];
    let at = 0;
    for (const s of steps) {
      const i = out.indexOf(s, at);
      expect(i, `${s} after position ${at}`).toBeGreaterThan(-1);
      at = i;
    }
    expect(out).toContain('TLSv1.3, ALPN attested-channel/1');
    expect(out).toMatch(/measurement [0-9a-f]{96}/);
    expect(out).toMatch(/measurement [0-9a-f]{96} \(pinned by the policy: workloadPinned true\)/);
    expect(out).toContain('simulated: true');
    expect(out).toContain('VM → client: "HELLO, CONFIDENTIAL WORLD"');
    expect(out).toMatch(/refused by the client: ERR_BINDING_MISMATCH/);
    expect(out).toMatch(/the attacker received: (RESULT|ALERT) ERR_BINDING_MISMATCH/);
    expect(out).toMatch(/refused by the client: ERR_EVIDENCE_POLICY/);
    expect(out).toContain('the VM was told: ERR_PEER_REJECTED');
    // Step 6: a simulated Azure VM, bound through its vTPM quote and HCL report, pinned by PCR 7.
    expect(out).toMatch(/azure-sev-snp: paravisor measurement [0-9a-f]{24}…, VMPL 0/);
    expect(out).toMatch(/binding report; workloadPinned true/);
    expect(out).toMatch(/boot-time HCL report .*refused, ERR_BINDING_MISMATCH/);
    expect(out).not.toContain('UNEXPECTED');
    await leaks.assertNoLeaks(3000);
  }, 90_000);

  it('refuses arguments with a usage error (exit 2)', async () => {
    const c = capture();
    expect(await main(['demo', '--bogus'], c.io)).toBe(2);
    expect(c.err()).toContain('demo takes no arguments');
  });
});
