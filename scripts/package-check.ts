/**
 * `npm run check:package`: proves the packages work as a user gets them.
 *
 * Packs `hoptrace` (the library) and `hoptrace-collector` (collector, UI and the
 * `hoptrace` command); installs each into a fresh `npm init -y` project in a temp
 * directory outside the repository, as the README says; checks the library's
 * `exports` and types, its footprint (`npm ls --omit=dev`), the error `startTracing`
 * gives without the OpenTelemetry SDK, and prints the install sizes; then starts the
 * installed collector and runs every file of examples/ against the real RabbitMQ,
 * checking through the collector's HTTP API that each example's chain arrived.
 *
 * Exits 1 with a `package-check: …` line naming what is wrong. KEEP=1 keeps the temp
 * directory for a look.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OTEL_SDK_PACKAGES } from '../src/internal/otel-sdk.ts';

const repo = fileURLToPath(new URL('..', import.meta.url));
const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/** The README's install lines (Quick start; OpenTelemetry and Jaeger). */
const LIBRARY_PEERS = ['amqplib', '@opentelemetry/api', 'pino'];
const OTEL_SDK = OTEL_SDK_PACKAGES;
/** What a service that installed only the library must not get. */
const NOT_IN_LIBRARY = /^(express|pg|pg-copy-streams|hoptrace-collector|protobufjs|@grpc\/.*|@opentelemetry\/(?!api$).*)$/;

/** Each example, what ships its hops, and the chain it must produce. */
const EXAMPLES: { file: string; ships: 'stdout' | 'transport' | 'otlp'; service: string; messages: number }[] = [
  { file: 'quick-start.mjs', ships: 'stdout', service: 'family-account', messages: 2 },
  { file: 'shipping-hops.mjs', ships: 'transport', service: 'billing', messages: 1 },
  { file: 'log-ids.mjs', ships: 'stdout', service: 'notification', messages: 1 },
  { file: 'tracing.mjs', ships: 'otlp', service: 'billing', messages: 1 },
];

/**
 * Packages whose install scripts npm warns about. hoptrace's own `prepare` (the library build, for
 * git installs) is listed by npm for a tarball install too, though npm runs `prepare` only for links
 * and git installs and never lists it for a registry install: it is not counted.
 */
function installScriptWarnings(output: string): string[] {
  return [...output.matchAll(/^npm warn install-scripts {2,}(@?[^@\s]+)@/gm)].map((m) => m[1]!).filter((name) => name !== 'hoptrace');
}

class CheckError extends Error {}
const fail = (message: string): never => {
  throw new CheckError(message);
};
const step = (what: string) => console.log(`\n==> ${what}`);

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) fail(`\`${cmd} ${args.join(' ')}\` in ${cwd} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

function npm(args: string[], cwd: string): string {
  // --prefer-offline: packages already in npm's cache (npm ci just filled it) are not fetched again.
  return run('npm', [...args, '--no-audit', '--no-fund', '--prefer-offline'], cwd);
}

/** `npm pack` into `dest`; returns the tarball's path and its file list. */
function pack(dest: string, workspace?: string): { tarball: string; files: string[]; size: number } {
  const args = ['pack', '--json', '--pack-destination', dest, ...(workspace ? ['-w', workspace] : [])];
  const r = spawnSync('npm', args, { cwd: repo, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) fail(`npm ${args.join(' ')} failed:\n${r.stderr}`);
  // prepack scripts print to stdout too: the JSON report is the last top-level array.
  const json = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('\n[') + 1)) as { filename: string; size: number; files: { path: string }[] }[];
  const info = json[0]!;
  return { tarball: join(dest, info.filename), files: info.files.map((f) => f.path), size: info.size };
}

function duKiB(dir: string): number {
  return Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

/** Every file an `exports` map points at, with the condition path that leads there. */
function exportTargets(value: unknown, path: string): { path: string; target: string }[] {
  if (typeof value === 'string') return [{ path, target: value }];
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([key, inner]) => exportTargets(inner, `${path} → ${key}`));
  }
  return [];
}

function checkTarball(name: string, files: string[], must: string[], mustNot: RegExp) {
  const missing = must.filter((f) => !files.includes(f));
  if (missing.length > 0) fail(`${name}'s tarball lacks ${missing.join(', ')} (files: ${files.length}); did the prepare build run?`);
  const extra = files.filter((f) => mustNot.test(f));
  if (extra.length > 0) fail(`${name}'s tarball holds what it must not: ${extra.slice(0, 10).join(', ')}${extra.length > 10 ? ', …' : ''}`);
}

function checkExports(project: string) {
  const dir = join(project, 'node_modules/hoptrace');
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  const subpaths = Object.keys(pkg.exports).sort();
  const expected = ['.', './otel', './package.json', './transport'];
  if (JSON.stringify(subpaths) !== JSON.stringify(expected)) fail(`hoptrace exports ${subpaths.join(', ')}; expected exactly ${expected.join(', ')}`);
  for (const [subpath, value] of Object.entries(pkg.exports)) {
    const targets = exportTargets(value, subpath);
    for (const t of targets) {
      if (!existsSync(join(dir, t.target))) fail(`hoptrace exports ${t.path} → ${t.target}, which is not in the package`);
    }
    if (subpath !== './package.json') {
      const conditions = targets.map((t) => t.path.split(' → ')[1]);
      if (conditions[0] !== 'types') fail(`hoptrace exports ${subpath}: "types" must come first, got ${conditions.join(', ')}`);
      if (!targets.some((t) => t.target.endsWith('.d.ts'))) fail(`hoptrace exports ${subpath} without types`);
    }
  }
}

/** Imports every entry from the consumer project the way a user would. */
function checkImports(project: string) {
  const script = `
    const lib = await import('hoptrace');
    const otel = await import('hoptrace/otel');
    const transport = await import('hoptrace/transport');
    const missing = [];
    for (const name of ['connect', 'instrument', 'hoptraceMixin', 'currentHopContext', 'telemetryStats']) if (typeof lib[name] !== 'function') missing.push('hoptrace.' + name);
    if (typeof otel.startTracing !== 'function') missing.push('hoptrace/otel.startTracing');
    if (typeof transport.default !== 'function') missing.push('hoptrace/transport default');
    let sdkError;
    try { otel.startTracing({ serviceName: 'x' }); } catch (err) { sdkError = { code: err.code, message: err.message }; }
    console.log(JSON.stringify({ missing, sdkError }));`;
  const out = run(process.execPath, ['--input-type=module', '-e', script], project);
  const result = JSON.parse(out.trim().split('\n').pop()!) as { missing: string[]; sdkError?: { code: string; message: string } };
  if (result.missing.length > 0) fail(`the installed hoptrace lacks ${result.missing.join(', ')}`);
  const { sdkError } = result;
  if (!sdkError || !sdkError.message.includes(`npm install ${OTEL_SDK.join(' ')}`)) {
    return fail(`startTracing without the OpenTelemetry SDK should throw an error naming \`npm install ${OTEL_SDK.join(' ')}\`; got ${JSON.stringify(sdkError)}`);
  }
  console.log(`ESM import of hoptrace, hoptrace/otel and hoptrace/transport: ok; startTracing without the SDK: ${sdkError.code}`);
}

function checkFootprint(project: string) {
  const tree = JSON.parse(run('npm', ['ls', '--omit=dev', '--all', '--json'], project)) as { dependencies?: Record<string, Dep> };
  // Optional peers that are not installed are listed too, without a version (`missing`).
  interface Dep { version?: string; missing?: boolean; dependencies?: Record<string, Dep> }
  const names = new Set<string>();
  const walk = (deps: Record<string, Dep> | undefined) => {
    for (const [name, dep] of Object.entries(deps ?? {})) {
      if (dep.version === undefined || dep.missing) continue;
      names.add(name);
      walk(dep.dependencies);
    }
  };
  walk(tree.dependencies);
  const bad = [...names].filter((n) => NOT_IN_LIBRARY.test(n));
  if (bad.length > 0) fail(`installing the library brings ${bad.join(', ')} (npm ls --omit=dev); those belong to the collector or the optional SDK`);
  console.log(`npm ls --omit=dev: ${names.size} packages, none of express, pg, the OpenTelemetry SDK or the collector`);
}

/** Type-checks a consumer file and the examples against the installed packages, with the repository's tsc. */
function checkTypes(project: string) {
  writeFileSync(
    join(project, 'consumer.ts'),
    `import { connect, instrument, hoptraceMixin, currentHopContext, type HopRecord, type HoptraceOptions } from 'hoptrace';
import { startTracing, type TracingHandle, type TracingOptions } from 'hoptrace/otel';
import hoptraceTransport, { type TransportOptions } from 'hoptrace/transport';
import amqp from 'amqplib';

const options: HoptraceOptions = { serviceName: 'consumer' };
const tracingOptions: TracingOptions = { serviceName: 'consumer', endpoint: 'http://localhost:4318' };
const transportOptions: TransportOptions = { url: 'http://localhost:4400' };
export async function main(): Promise<void> {
  const tracing: TracingHandle = startTracing(tracingOptions);
  const conn = await connect('amqp://localhost', options);
  const ch = instrument(await (await amqp.connect('amqp://localhost')).createChannel(), options);
  const sent: boolean = ch.sendToQueue('q', Buffer.from('{}'));
  const record: HopRecord | undefined = undefined;
  void [conn, sent, record, hoptraceMixin(), currentHopContext()?.correlationId, hoptraceTransport, transportOptions];
  await tracing.shutdown();
}
`,
  );
  const types = join(repo, 'node_modules/@types');
  const base = { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', noEmit: true, skipLibCheck: false, typeRoots: [types], types: ['node'] };
  writeFileSync(join(project, 'tsconfig.consumer.json'), JSON.stringify({ compilerOptions: { ...base, strict: true }, files: ['consumer.ts'] }));
  // The examples are plain JavaScript as a user pastes it: checked for names, imports and arity, not for strictness.
  writeFileSync(
    join(project, 'tsconfig.examples.json'),
    JSON.stringify({ compilerOptions: { ...base, allowJs: true, checkJs: true, strict: false }, files: EXAMPLES.map((e) => e.file) }),
  );
  const tsc = join(repo, 'node_modules/typescript/bin/tsc');
  for (const config of ['tsconfig.consumer.json', 'tsconfig.examples.json']) {
    const r = spawnSync(process.execPath, [tsc, '-p', config], { cwd: project, encoding: 'utf8' });
    if (r.status !== 0) fail(`type-check of ${config === 'tsconfig.consumer.json' ? 'a consumer of hoptrace' : 'the examples'} against the installed package failed:\n${r.stdout}${r.stderr}`);
  }
  console.log('tsc (skipLibCheck false) of a consumer file and of the examples against the installed package: ok');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) return fail(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${String(last)})` : ''}`);
    await sleep(200);
  }
}

async function startCollector(project: string, db: string): Promise<{ url: string; child: ChildProcess; log: () => string }> {
  const port = await freePort();
  let output = '';
  const child = spawn('npx', ['--no-install', 'hoptrace', 'collector', '--db', db, '--port', String(port), '--host', '127.0.0.1'], {
    cwd: project,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: npx, and the collector it starts, stop together
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(`the installed collector at ${url}/healthz`, async () => {
    if (child.exitCode !== null) fail(`the installed collector exited ${child.exitCode}:\n${output}`);
    return (await fetch(`${url}/healthz`)).ok ? true : undefined;
  });
  const ui = await fetch(url);
  const html = await ui.text();
  if (!ui.ok || !html.includes('<div id="app"') && !html.includes('<script')) fail(`the installed collector does not serve its UI at ${url}/ (HTTP ${ui.status})`);
  return { url, child, log: () => output };
}

interface ChainSummaryLike { status: string; messageCount: number; services: string[] }

/** The chain id of an example's run: the first message's id, read off its hop lines on stdout. */
function chainIdOf(stdout: string, file: string): string {
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const hop = (JSON.parse(line) as { hop?: { kind?: string; messageId?: string; correlationId?: string } }).hop;
    if (hop?.kind === 'publish' && hop.messageId && !hop.correlationId) return hop.messageId;
  }
  return fail(`${file} logged no publish record of a chain's first message on stdout:\n${stdout.slice(0, 2000)}`);
}

async function runExample(project: string, collectorUrl: string, example: (typeof EXAMPLES)[number]) {
  const env = { ...process.env, AMQP_URL, HOPTRACE_URL: collectorUrl, OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl };
  const started = Date.now();
  const child = spawn(process.execPath, [example.file], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  if (code !== 0) fail(`${example.file} exited ${code ?? 'on a 30 s timeout'} (is RabbitMQ up at ${AMQP_URL}?):\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  const chainId = chainIdOf(stdout, example.file);
  if (example.ships === 'stdout') {
    // The hop lines the example logged, loaded the way `hoptrace import` or a log shipper would.
    const res = await fetch(`${collectorUrl}/v1/hops`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: stdout });
    if (res.status !== 202) fail(`POST /v1/hops of ${example.file}'s output answered ${res.status}: ${await res.text()}`);
  }
  const chain = await waitUntil(`the chain ${chainId} of ${example.file} in the collector (shipped by ${example.ships})`, async () => {
    const res = await fetch(`${collectorUrl}/api/chains/${chainId}`);
    if (!res.ok) return undefined;
    const summary = (await res.json()) as ChainSummaryLike;
    return summary.messageCount >= example.messages && summary.status === 'ok' ? summary : undefined;
  });
  if (!chain.services.includes(example.service)) fail(`${example.file}'s chain has services ${chain.services.join(', ')}, not ${example.service}`);
  if (example.file === 'log-ids.mjs' && !stdout.split('\n').some((l) => l.includes('"msg":"sending the withdrawal email"') && l.includes(`"correlationId":"${chainId}"`))) {
    fail(`log-ids.mjs's own log line does not carry the chain's correlationId ${chainId}`);
  }
  console.log(`${example.file}: chain ${chainId} arrived (${chain.messageCount} message(s), ${chain.status}, via ${example.ships}) in ${Date.now() - started} ms`);
}

async function main() {
  const tmp = mkdtempSync(join(tmpdir(), 'hoptrace-package-check-'));
  let collector: Awaited<ReturnType<typeof startCollector>> | undefined;
  try {
    step('npm pack (prepare builds)');
    const lib = pack(tmp);
    checkTarball('hoptrace', lib.files, ['package.json', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/otel.js', 'dist/src/transport.js'], /^(bin|collector|ui|demo|test|examples|packages|dist\/(collector|ui))\//);
    const col = pack(tmp, 'hoptrace-collector');
    checkTarball(
      'hoptrace-collector',
      col.files,
      ['package.json', 'bin/hoptrace.js', 'dist/bin/hoptrace.js', 'dist/collector/cli.js', 'dist/collector/sqlite-writer.worker.js', 'dist/ui/index.html'],
      /\.ts$|^(test|demo)\//,
    );
    console.log(`hoptrace: ${lib.files.length} files, ${(lib.size / 1024).toFixed(0)} KiB packed; hoptrace-collector: ${col.files.length} files, ${(col.size / 1024).toFixed(0)} KiB packed`);

    step(`a service that installs the library (${tmp}/service)`);
    const service = join(tmp, 'service');
    run('mkdir', ['-p', service], tmp);
    npm(['init', '-y'], service);
    const installOut = npm(['install', lib.tarball, ...LIBRARY_PEERS], service);
    const libraryScripts = installScriptWarnings(installOut);
    if (libraryScripts.length > 0) fail(`installing the library warns about the install scripts of ${libraryScripts.join(', ')}:\n${installOut}`);
    checkExports(service);
    checkImports(service);
    checkFootprint(service);
    const libraryKiB = duKiB(join(service, 'node_modules'));

    step(`the OpenTelemetry SDK, for startTracing (npm install ${OTEL_SDK.join(' ')})`);
    npm(['install', ...OTEL_SDK], service);
    const withSdkKiB = duKiB(join(service, 'node_modules'));
    for (const e of EXAMPLES) copyFileSync(join(repo, 'examples', e.file), join(service, e.file));
    const unlisted = readdirSync(join(repo, 'examples')).filter((f) => !EXAMPLES.some((e) => e.file === f));
    if (unlisted.length > 0) fail(`examples/ has files this check does not run: ${unlisted.join(', ')}`);
    checkTypes(service);

    step(`the collector package (${tmp}/collector)`);
    const collectorProject = join(tmp, 'collector');
    run('mkdir', ['-p', collectorProject], tmp);
    npm(['init', '-y'], collectorProject);
    const collectorInstall = npm(['install', col.tarball], collectorProject);
    const collectorScripts = installScriptWarnings(collectorInstall);
    if (collectorScripts.length > 0) fail(`installing the collector warns about the install scripts of ${collectorScripts.join(', ')}:\n${collectorInstall}`);
    const collectorKiB = duKiB(join(collectorProject, 'node_modules'));
    const libraryVersion = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
    const reported = run('npx', ['--no-install', 'hoptrace', '--version'], collectorProject).trim();
    if (reported !== libraryVersion) fail(`npx hoptrace --version from the installed collector says ${JSON.stringify(reported)}, not ${libraryVersion}`);
    collector = await startCollector(collectorProject, join(tmp, 'x.db'));
    console.log(`npx hoptrace collector from the installed package: up at ${collector.url}, UI served`);

    step('install sizes (du -sk node_modules of a fresh npm init -y project)');
    console.log(`library   npm install hoptrace ${LIBRARY_PEERS.join(' ')}: ${mib(libraryKiB)}`);
    console.log(`  + the OpenTelemetry SDK for startTracing: ${mib(withSdkKiB)}`);
    console.log(`collector npm install hoptrace-collector: ${mib(collectorKiB)}`);

    step(`the examples against RabbitMQ (${AMQP_URL}) and the installed collector`);
    for (const example of EXAMPLES) await runExample(service, collector.url, example);
    console.log('\npackage-check: ok');
  } finally {
    if (collector) {
      const { child } = collector;
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.on('exit', r));
        process.kill(-child.pid!, 'SIGTERM');
        await exited;
      }
    }
    if (process.env.KEEP) console.log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`\npackage-check: ${err instanceof CheckError ? err.message : (err as Error).stack}`);
  process.exit(1);
});
