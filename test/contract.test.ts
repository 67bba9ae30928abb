/**
 * The contract module (src/contract/): what it says about the package and
 * the error root both parts extend.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ErrorCodes as CollectorCodes, StoreError, statusOf } from '../collector/errors.ts';
import { ConfigError, HoptraceError, PACKAGE_NAME, VERSION } from '../src/contract/index.ts';
import * as library from '../src/index.ts';

describe('the contract', () => {
  it('names the package and version that package.json holds', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
    expect(PACKAGE_NAME).toBe(pkg.name);
    expect(VERSION).toBe(pkg.version);
  });

  it('gives the library and the collector one error root, so one instanceof catches both', () => {
    expect(new StoreError('disk full')).toBeInstanceOf(HoptraceError);
    expect(new library.TelemetryError('hook failed')).toBeInstanceOf(HoptraceError);
    expect(library.HoptraceError).toBe(HoptraceError);
    expect(library.ConfigError).toBe(ConfigError);
    expect(statusOf(new StoreError('closed', { statusCode: 503 }))).toBe(503);
    expect(statusOf(new ConfigError('bad'))).toBe(500);
  });

  it('keeps the stable error codes the library and the collector share', () => {
    expect(library.ErrorCodes.INVALID_OPTION).toBe('HOPTRACE_ERR_INVALID_OPTION');
    expect(CollectorCodes.INVALID_OPTION).toBe(library.ErrorCodes.INVALID_OPTION);
    expect(library.ErrorCodes.BROKER_UNREACHABLE).toBe('HOPTRACE_ERR_BROKER_UNREACHABLE');
    expect(CollectorCodes.INVALID_HOP).toBe('HOPTRACE_ERR_INVALID_HOP');
  });

  it('exports from the library only the errors a library user can meet', () => {
    const errors = Object.keys(library).filter((name) => /Error$/.test(name)).sort();
    expect(errors).toEqual(['ConfigError', 'HoptraceError', 'TelemetryError']);
    expect(Object.keys(library.ErrorCodes).sort()).toEqual(['BROKER_UNREACHABLE', 'INVALID_OPTION', 'MALFORMED_HEADER', 'TELEMETRY']);
  });
});
