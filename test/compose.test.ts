/**
 * docker-compose.yml and the Dockerfile, checked without a container engine:
 * the file parses, the wiring between services holds, the ports are the ones
 * a user expects, and everything the image runs exists in this repository.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDemoArgs } from '../demo/options.ts';

const root = process.cwd();
const read = (file: string) => readFileSync(join(root, file), 'utf8');

interface Service {
  image?: string;
  build?: string | { context: string };
  command?: string[] | string;
  environment?: Record<string, string> | string[];
  ports?: (string | { target: number; published?: number | string })[];
  expose?: (string | number)[];
  volumes?: (string | { type: string; source: string; target: string })[];
  healthcheck?: { test: string[] | string; interval?: string };
  depends_on?: string[] | Record<string, { condition?: string }>;
  profiles?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const compose = parse(read('docker-compose.yml')) as Compose;
const services = compose.services;
/** What `docker compose up` starts: the services outside every profile. */
const defaultServices = Object.fromEntries(Object.entries(services).filter(([, s]) => !s.profiles?.length));
const inProfile = (profile: string) => Object.entries(services).filter(([, s]) => s.profiles?.includes(profile));
const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };

function env(s: Service): Record<string, string> {
  if (Array.isArray(s.environment)) {
    return Object.fromEntries(s.environment.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)]));
}

/** `[published, target]` pairs; "5672:5672", "127.0.0.1:80:8080", "9000", long syntax. */
function portPairs(s: Service): [published: number | undefined, target: number][] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object') return [p.published === undefined ? undefined : Number(p.published), p.target];
    const parts = String(p).split('/')[0].split(':');
    const target = Number(parts.at(-1));
    return [parts.length > 1 ? Number(parts.at(-2)) : undefined, target];
  });
}

/** Ports a service listens on inside the network: its published targets and `expose`. */
function containerPorts(s: Service): Set<number> {
  return new Set([...portPairs(s).map(([, t]) => t), ...(s.expose ?? []).map(Number)]);
}

const publishedPorts = new Set(Object.values(services).flatMap((s) => portPairs(s).map(([p]) => p).filter((p) => p !== undefined)));

const DEFAULT_PORTS: Record<string, number> = { 'amqp:': 5672, 'http:': 80, 'https:': 443, 'postgres:': 5432 };
/** Variables a browser opens rather than a container: they name localhost and a published port. */
const BROWSER_FACING = new Set(['HOPTRACE_JAEGER_URL']);

function commandOf(s: Service): string[] {
  return typeof s.command === 'string' ? s.command.split(/\s+/) : (s.command ?? []);
}

describe('docker-compose.yml', () => {
  it('defines RabbitMQ with management, Jaeger with OTLP, the collector and the demo services', () => {
    expect(Object.keys(defaultServices).sort()).toEqual(['collector', 'demo', 'jaeger', 'rabbitmq']);
    expect(services.rabbitmq.image).toMatch(/^rabbitmq:\d[\w.]*-management$/);
    expect(services.jaeger.image).toMatch(/^jaegertracing\/all-in-one:/);
    expect(env(services.jaeger).COLLECTOR_OTLP_ENABLED).toBe('true');
    expect(services.collector.build).toBe('.');
    expect(services.demo.image).toBe(services.collector.image);
  });

  it('publishes the ports a user expects', () => {
    const published = (name: string) => portPairs(services[name]).map(([p, t]) => `${p}:${t}`).sort();
    expect(published('rabbitmq')).toEqual(['15672:15672', '5672:5672']);
    expect(published('jaeger')).toEqual(['16686:16686', '4317:4317', '4318:4318']);
    expect(published('collector')).toEqual(['4400:4400']);
  });

  it('points every URL in every service environment at a service and port the file defines', () => {
    let checked = 0;
    for (const [name, service] of Object.entries(services)) {
      for (const [key, value] of Object.entries(env(service))) {
        if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) continue;
        const url = new URL(value);
        const port = Number(url.port || DEFAULT_PORTS[url.protocol]);
        checked++;
        if (BROWSER_FACING.has(key)) {
          expect(url.hostname, `${name}.${key}`).toBe('localhost');
          expect(publishedPorts.has(port), `${name}.${key}: port ${port} is published`).toBe(true);
          continue;
        }
        const target = services[url.hostname];
        expect(target, `${name}.${key} names service "${url.hostname}"`).toBeDefined();
        // A service outside a profile never depends on one inside it (it would not start without the profile).
        if (!service.profiles?.length) expect(target.profiles ?? [], `${name}.${key}: "${url.hostname}" starts without a profile`).toEqual([]);
        expect(containerPorts(target).has(port), `${name}.${key}: "${url.hostname}" listens on ${port}`).toBe(true);
        const deps = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
        expect(deps, `${name} waits for ${url.hostname}`).toContain(url.hostname);
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4);
    expect(env(services.demo)).toMatchObject({
      AMQP_URL: 'amqp://guest:guest@rabbitmq:5672',
      HOPTRACE_URL: 'http://collector:4400',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318',
    });
  });

  it('health-checks RabbitMQ and the collector, and starts the demo only when they are healthy', () => {
    expect(services.rabbitmq.healthcheck?.test).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'ping']);
    const collectorCheck = (services.collector.healthcheck?.test as string[]).join(' ');
    expect(collectorCheck).toContain('http://127.0.0.1:4400/healthz');
    const deps = services.demo.depends_on as Record<string, { condition?: string }>;
    for (const [dep, { condition }] of Object.entries(deps)) {
      if (condition === 'service_healthy') expect(services[dep].healthcheck, `${dep} has a healthcheck`).toBeDefined();
    }
    expect(deps.rabbitmq.condition).toBe('service_healthy');
    expect(deps.collector.condition).toBe('service_healthy');
  });

  it('keeps the collector database on a named volume', () => {
    const mounts = (services.collector.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    const data = mounts.find((m) => m.split(':')[1] === '/data');
    expect(data).toBeDefined();
    const volume = data!.split(':')[0];
    expect(compose.volumes && volume in compose.volumes).toBe(true);
    const cmd = commandOf(services.collector);
    expect(cmd.slice(0, 2)).toEqual(['hoptrace', 'collector']);
    expect(cmd[cmd.indexOf('--db') + 1]).toMatch(/^\/data\//);
    expect(cmd[cmd.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(Number(cmd[cmd.indexOf('--port') + 1])).toBe(4400);
    expect(env(services.collector).HOPTRACE_JAEGER_URL).toBe('http://localhost:16686');
  });

  it('runs commands that exist: the collector CLI knows its flags, the demo knows --services-only', () => {
    const help = execFileSync(process.execPath, [join(root, 'bin/hoptrace.js'), 'collector', '--help'], { encoding: 'utf8' });
    for (const flag of commandOf(services.collector).filter((a) => a.startsWith('--'))) expect(help).toContain(flag);
    const [node, script, ...args] = commandOf(services.demo);
    expect(node).toBe('node');
    expect(existsSync(join(root, script))).toBe(true);
    expect(parseDemoArgs(args, {})).toMatchObject({ servicesOnly: true });
  });
});

describe('docker-compose.yml, profile postgres', () => {
  const profile = Object.fromEntries(inProfile('postgres'));
  const collectors = Object.entries(profile).filter(([, s]) => commandOf(s).slice(0, 2).join(' ') === 'hoptrace collector');
  const nginx = read('deploy/nginx-collectors.conf');

  it('adds PostgreSQL, two collectors sharing it, and a load balancer in front of them', () => {
    expect(profile.postgres.image).toMatch(/^postgres:1[5-9]\b/);
    expect(collectors.map(([name]) => name).sort()).toEqual(['collector-a', 'collector-b']);
    const url = new URL(env(collectors[0][1]).HOPTRACE_STORE);
    expect(url.protocol).toBe('postgres:');
    const pg = env(profile.postgres);
    expect([url.username, url.password, url.pathname.slice(1)]).toEqual([pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, pg.POSTGRES_DB]);
    for (const [name, s] of collectors) {
      expect(env(s).HOPTRACE_STORE, `${name} uses the same store`).toBe(url.toString().replace(/\/$/, ''));
      // Stateless: no SQLite file, no volume of its own.
      expect(commandOf(s), name).not.toContain('--db');
      expect(s.volumes ?? [], name).toEqual([]);
      expect((s.depends_on as Record<string, { condition?: string }>).postgres.condition).toBe('service_healthy');
      expect((s.healthcheck?.test as string[]).join(' ')).toContain('http://127.0.0.1:4400/healthz');
      expect(s.image).toBe(services.collector.image);
    }
    expect(profile.postgres.healthcheck?.test).toEqual(['CMD', 'pg_isready', '-U', pg.POSTGRES_USER, '-d', pg.POSTGRES_DB]);
  });

  it('balances across exactly the profile\'s collectors, published on its own port, with live events unbuffered', () => {
    const [lbName, lb] = Object.entries(profile).find(([, s]) => /^nginx:/.test(s.image ?? ''))!;
    const [[published, target]] = portPairs(lb);
    expect(published).toBe(4410);
    expect(Object.values(defaultServices).flatMap((s) => portPairs(s).map(([p]) => p))).not.toContain(published);
    const mount = (lb.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`)).find((m) => m.includes('nginx-collectors.conf'));
    expect(mount?.split(':')[0]).toBe('./deploy/nginx-collectors.conf');
    expect(nginx).toMatch(new RegExp(`listen ${target};`));
    const upstream = [...nginx.matchAll(/^\s*server ([\w-]+):(\d+)/gm)].map((m) => [m[1], Number(m[2])]);
    expect(upstream.map(([h]) => h).sort()).toEqual(collectors.map(([name]) => name).sort());
    for (const [host, port] of upstream) expect(containerPorts(services[host as string]).has(port as number), `${host} listens on ${port}`).toBe(true);
    const deps = lb.depends_on as Record<string, { condition?: string }>;
    for (const [name] of collectors) expect(deps[name]?.condition, `${lbName} waits for ${name}`).toBe('service_healthy');
    const live = /location \/api\/live \{([^}]*)\}/.exec(nginx)?.[1] ?? '';
    expect(live).toContain('proxy_buffering off;');
    expect(nginx).toMatch(/client_max_body_size 16m;/);
  });

  it('keeps PostgreSQL on a named volume and runs collector commands that exist', () => {
    const data = (profile.postgres.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`))[0];
    expect(data.split(':')[1]).toBe('/var/lib/postgresql/data');
    expect(compose.volumes && data.split(':')[0] in compose.volumes).toBe(true);
    const help = execFileSync(process.execPath, [join(root, 'bin/hoptrace.js'), 'collector', '--help'], { encoding: 'utf8' });
    for (const [, s] of collectors) for (const flag of commandOf(s).filter((a) => a.startsWith('--'))) expect(help).toContain(flag);
    expect(help).toContain('HOPTRACE_STORE');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('builds on Node 24 slim with npm ci and npm run build, and runs as a non-root user', () => {
    expect(instructions[0]).toMatch(/^FROM node:24(-|\.)[\w.-]*slim/);
    const runs = instructions.filter((l) => l.startsWith('RUN ')).join(' ');
    expect(runs).toMatch(/npm ci\b/);
    expect(runs).toMatch(/npm run build\b/);
    const users = instructions.filter((l) => l.startsWith('USER '));
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^USER (root|0)(:|$)/);
  });

  it('only runs npm scripts that package.json defines', () => {
    const scripts = [...dockerfile.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]);
    expect(scripts.length).toBeGreaterThan(0);
    for (const s of scripts) expect(pkg.scripts[s], `package.json script "${s}"`).toBeDefined();
  });

  it('copies the lockfile before installing and starts the collector by default', () => {
    expect(instructions.findIndex((l) => /^COPY .*package-lock\.json/.test(l))).toBeLessThan(instructions.findIndex((l) => /npm ci/.test(l)));
    const cmd = instructions.find((l) => l.startsWith('CMD '))!;
    expect(JSON.parse(cmd.slice(4))).toEqual(commandOf(services.collector));
    expect(existsSync(join(root, 'bin/hoptrace.js'))).toBe(true);
  });

  it('keeps node_modules, build output, git and databases out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.git', '*.db']) expect(ignored).toContain(entry);
  });
});
