// Placeholder: the broker benchmarks land with their issue.
export async function run(): Promise<void> {}
