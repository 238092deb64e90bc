/**
 * Module hooks for the bench: the examples import the library from its sources (`../../src/…`,
 * which tsx compiles on the fly); under the bench they get the build in dist/ instead, so that a
 * server from examples/ runs the same code as the bench's own contenders, which is what the bench
 * measures (docs/benchmarks.md, "What runs").
 */
export async function resolve(specifier, context, nextResolve) {
  const parent = context.parentURL ?? '';
  if (parent.includes('/examples/') && specifier.startsWith('../../src/'))
    return nextResolve(specifier.replace('../../src/', '../../dist/'), context);
  return nextResolve(specifier, context);
}
