import { defineConfig } from 'vitest/config';

// Tests talk to the real RabbitMQ, real SQLite files, real HTTP servers and a
// real Chromium; those are slower than unit tests, hence the generous timeouts.
// Two workers match the two cores of the CI machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
