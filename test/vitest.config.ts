import { defineConfig } from 'vitest/config';

// Native code: forked workers, one file at a time (style anchor: node-llama-cpp vitest.config.ts).
export default defineConfig({
    test: {
        root: new URL('..', import.meta.url).pathname,
        include: ['test/**/*.test.ts'],
        pool: 'forks',
        maxWorkers: 1,
        fileParallelism: false,
        testTimeout: 120_000,
        hookTimeout: 300_000,
        reporters: ['default'],
    },
});
