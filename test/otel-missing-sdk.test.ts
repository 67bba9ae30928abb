/**
 * The OpenTelemetry SDK is an optional peer dependency of hoptrace: `hoptrace/otel`
 * must load without it, and `startTracing` must say what to install. Each case runs
 * in a child Node whose module resolution really fails for the SDK packages
 * (a `module.registerHooks` resolve hook), so nothing here is mocked.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../src/errors.ts';
import { OTEL_SDK_INSTALL, OTEL_SDK_PACKAGES } from '../src/internal/otel-sdk.ts';

const OTEL = fileURLToPath(new URL('../src/otel.ts', import.meta.url));

/** Runs `body` as an ES module in a child Node where the listed packages cannot be resolved; returns its stdout, parsed. */
function runWithout(hidden: readonly string[], body: string): unknown {
  const script = `
    import { registerHooks } from 'node:module';
    const hidden = new Set(${JSON.stringify(hidden)});
    const asked = [];
    registerHooks({
      resolve(specifier, context, next) {
        if (specifier.startsWith('@opentelemetry/') && specifier !== '@opentelemetry/api') asked.push(specifier);
        if (hidden.has(specifier)) {
          throw Object.assign(new Error("Cannot find package '" + specifier + "'"), { code: 'ERR_MODULE_NOT_FOUND' });
        }
        return next(specifier, context);
      },
    });
    const otel = await import(${JSON.stringify(OTEL)});
    ${body}
  `;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return JSON.parse(out);
}

describe('hoptrace/otel without the OpenTelemetry SDK', () => {
  it('imports without loading any OpenTelemetry SDK package', () => {
    const result = runWithout(OTEL_SDK_PACKAGES, `console.log(JSON.stringify({ asked, startTracing: typeof otel.startTracing }));`);
    expect(result).toEqual({ asked: [], startTracing: 'function' });
  });

  it('startTracing throws a ConfigError that names every missing package and the npm install line', () => {
    const missing = ['@opentelemetry/sdk-node', '@opentelemetry/exporter-trace-otlp-proto'];
    const result = runWithout(
      missing,
      `try { otel.startTracing({ serviceName: 'billing' }); console.log(JSON.stringify({ threw: false })); }
       catch (err) { console.log(JSON.stringify({ threw: true, name: err.name, code: err.code, message: err.message })); }`,
    ) as { threw: boolean; name: string; code: string; message: string };
    expect(result).toMatchObject({ threw: true, name: 'ConfigError', code: ErrorCodes.INVALID_OPTION });
    expect(result.message).toContain(`not installed: ${missing.join(', ')}.`);
    expect(result.message).toContain(OTEL_SDK_INSTALL);
    expect(result.message).not.toContain('@opentelemetry/resources,');
  });

  it('startTracing with the SDK installed registers it, and the install line lists exactly what it loads', () => {
    const result = runWithout(
      [],
      `const t = otel.startTracing({ serviceName: 'billing' });
       await t.shutdown();
       console.log(JSON.stringify({ enabled: t.enabled, asked: [...new Set(asked)].sort() }));`,
    ) as { enabled: boolean; asked: string[] };
    expect(result.enabled).toBe(true);
    expect(result.asked.filter((name) => OTEL_SDK_PACKAGES.includes(name as never))).toEqual([...OTEL_SDK_PACKAGES].sort());
  });
});
