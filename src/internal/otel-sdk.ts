/**
 * The OpenTelemetry SDK packages behind `startTracing`, loaded on its first call.
 * They are optional peer dependencies of hoptrace: a service that only uses the
 * wrappers installs none of them, `import 'hoptrace/otel'` stays cheap, and a
 * missing one is a ConfigError naming the `npm install` line instead of an
 * `ERR_MODULE_NOT_FOUND` at import time.
 *
 * Each package is resolved as `import` would resolve it (its ES module entry) and
 * loaded synchronously (`require` of an ES module, Node >= 22.12), so the SDK and the
 * wrappers share one `@opentelemetry/api` instance and `startTracing` stays synchronous.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as ContextAsyncHooks from '@opentelemetry/context-async-hooks';
import type * as Core from '@opentelemetry/core';
import type * as ExporterTraceOtlpProto from '@opentelemetry/exporter-trace-otlp-proto';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkNode from '@opentelemetry/sdk-node';
import type * as SdkTrace from '@opentelemetry/sdk-trace';
import { ConfigError } from '../errors.ts';

/** What `startTracing` needs besides `@opentelemetry/api`, in the order of the install line. */
export const OTEL_SDK_PACKAGES = [
  '@opentelemetry/sdk-node',
  '@opentelemetry/sdk-trace',
  '@opentelemetry/exporter-trace-otlp-proto',
  '@opentelemetry/resources',
  '@opentelemetry/core',
  '@opentelemetry/context-async-hooks',
] as const;

/** The command that installs them. */
export const OTEL_SDK_INSTALL = `npm install ${OTEL_SDK_PACKAGES.join(' ')}`;

export interface OtelSdk {
  contextAsyncHooks: typeof ContextAsyncHooks;
  core: typeof Core;
  exporterTraceOtlpProto: typeof ExporterTraceOtlpProto;
  resources: typeof Resources;
  sdkNode: typeof SdkNode;
  sdkTrace: typeof SdkTrace;
}

type Resolve = (specifier: string) => string;

const requireModule = createRequire(import.meta.url);
let loaded: OtelSdk | undefined;

/** Resolve every package first, so the error lists all that are missing at once. */
function resolveAll(resolve: Resolve): Map<string, string> {
  const found = new Map<string, string>();
  const missing: string[] = [];
  for (const name of OTEL_SDK_PACKAGES) {
    try {
      found.set(name, resolve(name));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err;
      missing.push(name);
    }
  }
  if (missing.length > 0) {
    throw new ConfigError(
      `startTracing needs the OpenTelemetry SDK, an optional peer dependency of hoptrace; not installed: ${missing.join(', ')}. ` +
        `Install it with: ${OTEL_SDK_INSTALL}`,
    );
  }
  return found;
}

/**
 * The SDK modules, loaded once.
 * @param resolve how a package name becomes a file URL (tests pass one that finds nothing)
 * @throws ConfigError (`HOPTRACE_ERR_INVALID_OPTION`) naming the missing packages and the install line
 */
export function loadOtelSdk(resolve: Resolve = (name) => import.meta.resolve(name)): OtelSdk {
  if (loaded) return loaded;
  const urls = resolveAll(resolve);
  const load = (name: (typeof OTEL_SDK_PACKAGES)[number]) => requireModule(fileURLToPath(urls.get(name)!));
  loaded = {
    sdkNode: load('@opentelemetry/sdk-node'),
    sdkTrace: load('@opentelemetry/sdk-trace'),
    exporterTraceOtlpProto: load('@opentelemetry/exporter-trace-otlp-proto'),
    resources: load('@opentelemetry/resources'),
    core: load('@opentelemetry/core'),
    contextAsyncHooks: load('@opentelemetry/context-async-hooks'),
  };
  return loaded;
}
