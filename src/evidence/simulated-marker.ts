/**
 * The organisation name every simulated root carries. A verifier sets `claims.simulated` when the
 * trust anchor that accepted the evidence has this name, so simulated evidence can never pass for
 * hardware evidence in logs or policy callbacks. (Trust itself comes only from trustAnchors.)
 */
export const SIMULATED_ORGANIZATION = 'attested-channel simulated platform (not a TEE)';
