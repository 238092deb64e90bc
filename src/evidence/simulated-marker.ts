/**
 * The organisation name every simulated root carries. A verifier sets `claims.simulated` when the
 * trust anchor that accepted the evidence has this name, so simulated evidence can never pass for
 * hardware evidence in logs or policy callbacks. (Trust itself comes only from trustAnchors.)
 */
export const SIMULATED_ORGANIZATION = 'attested-channel simulated platform (not a TEE)';

/**
 * SHA-256 of the simulated roots (the Milan, Genoa and Turin ARKs, then the Intel root), as
 * `simulated.trustAnchors()` gives them: enough to tell a chain refused for ending at a simulated
 * root without loading the simulator and its keys. test/providers/simulated-certs.test.ts holds
 * them equal to the embedded roots.
 */
export const SIMULATED_ROOT_SHA256: readonly string[] = [
  'd6793ea452e0b166c0d3b48808d340b9f1a982e9cfb65c566efd8972a737e697',
  'e424563c4f723c1a96fc7c97c8f21a6313b856f60521c4f937113eadfd720eae',
  '7003c42a50eae1b02e7cb4e9f1940802c7fe42d991e0f26587c77b21ff845976',
  'e434c6228f7c413256716da57ac7086c8e57986b4b1cf3d68e95ba118db97df8',
];
