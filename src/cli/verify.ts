import type { CliIo } from './io.js';
import { usageError } from './io.js';

// Placeholder until the 'verify' command lands.
export async function run(_args: string[], io: CliIo): Promise<number> {
  return usageError(io, 'verify is not implemented yet');
}
