// Placeholder: the tdx benchmarks land with their issue.
export async function run(): Promise<void> {}
