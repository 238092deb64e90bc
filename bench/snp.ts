// Placeholder: the snp benchmarks land with their issue.
export async function run(): Promise<void> {}
