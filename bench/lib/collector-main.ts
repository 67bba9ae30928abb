/**
 * Entry of a benchmark collector process: `startCollector` exactly as the
 * `hoptrace collector` command runs it, with what a benchmark needs pinned:
 * no retention (it would delete the cached 1M-hop store's chains once they
 * are a week old), no token, warnings only in the log.
 *
 *   node bench/lib/collector-main.ts PORT DB_PATH|postgres://… [DURABILITY]
 */
import { pino } from 'pino';
import { startCollector } from '../../collector/server.ts';

const [port, db, durability] = process.argv.slice(2);
const collector = await startCollector({
  port: Number(port),
  host: '127.0.0.1',
  ...(/^postgres(ql)?:\/\//.test(db) ? { storeUrl: db } : { db }),
  token: '',
  retention: false,
  durability: durability === 'normal' ? 'normal' : 'full',
  logger: pino({ level: 'warn' }),
});
process.stdout.write(`listening ${collector.url}\n`);
const stop = async () => {
  await collector.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
