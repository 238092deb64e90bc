/**
 * A Verifier's parsed policies, by content. parsePolicy() of the same small policy costs ~2 µs in
 * a tight loop but ~15–25 µs once per connect between handshakes (node --cpu-prof over 1 500
 * connects: its checks and the brand-and-freeze of the result); a caller that builds its policy
 * object afresh for each call (verifyEvidence({ policy: {...} }), attestedConnect({ verify })) pays
 * it every time. The key is the policy's JSON text, built here in one pass that accepts only
 * what JSON says exactly — plain objects and arrays, strings, booleans, null and finite numbers
 * other than -0 — and the value is parsePolicy() of that text: a hit is the parse of exactly
 * the content of the key, whatever object it came from. Anything else (undefined, a function,
 * a Date or other class instance, NaN, a sparse array, a policy nested deeper than MAX_DEPTH, a
 * key over MAX_KEPT_POLICY_TEXT) is parsed as given and not kept: JSON would drop or rewrite it,
 * and a policy that lost a field would accept more than its author listed.
 */
import { Lru } from './lru.js';
import { type Policy, parsePolicy } from './policy.js';

/** Entries of `policies`. */
export const POLICY_CACHE_SIZE = 16;

/** The longest policy text kept (a policy is the caller's, not the peer's, but still bounded). */
export const MAX_KEPT_POLICY_TEXT = 16 * 1024;

/** Deeper than any policy section (azure.snp.minTcb is 3 levels below the root). */
const MAX_DEPTH = 8;

/** The JSON text of `value` if JSON represents it exactly, else undefined. */
export function policyText(value: unknown, depth = 0): string | undefined {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number')
    return Number.isFinite(value) && !Object.is(value, -0) ? JSON.stringify(value) : undefined;
  if (value === null) return 'null';
  if (typeof value !== 'object' || depth >= MAX_DEPTH) return undefined;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return undefined;
    let text = '[';
    for (let i = 0; i < value.length; i++) {
      if (!Object.hasOwn(value, i)) return undefined;
      const item = policyText(value[i], depth + 1);
      if (item === undefined) return undefined;
      text += i === 0 ? item : `,${item}`;
    }
    return `${text}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return undefined;
  let text = '{';
  for (const key of Object.keys(value)) {
    const item = policyText((value as Record<string, unknown>)[key], depth + 1);
    if (item === undefined) return undefined;
    text += `${text.length === 1 ? '' : ','}${JSON.stringify(key)}:${item}`;
  }
  return `${text}}`;
}

export class PolicyMemo {
  readonly lru = new Lru<string, Policy>(POLICY_CACHE_SIZE);

  /** parsePolicy(input), from the cache when the same content was parsed before. */
  parse(input: unknown): Policy {
    // A policy parsePolicy() returned, a JSON text or nothing: parsePolicy() answers at once or
    // parses text (kept by that text, the same key as the equal object's).
    if (input === undefined || input === null || (typeof input === 'object' && Object.isFrozen(input)))
      return parsePolicy(input);
    const text = typeof input === 'string' ? input : policyText(input);
    if (text === undefined || text.length > MAX_KEPT_POLICY_TEXT) return parsePolicy(input);
    const kept = this.lru.get(text);
    if (kept !== undefined) return kept;
    // The parse of the text itself, not of `input`: what is kept is what the key says.
    const policy = parsePolicy(text);
    this.lru.set(text, policy);
    return policy;
  }
}

/** Where a Verifier keeps its PolicyMemo (not exported from the package). */
export const POLICY_MEMO: unique symbol = Symbol('attested-channel.policy-memo');

/** The policy memo of a Verifier made by createVerifier(); undefined for any other object. */
export function policyMemoOf(verifier: unknown): PolicyMemo | undefined {
  if (typeof verifier !== 'object' || verifier === null) return undefined;
  const memo = (verifier as { [POLICY_MEMO]?: unknown })[POLICY_MEMO];
  return memo instanceof PolicyMemo ? memo : undefined;
}
