/**
 * The package's name and version: the instrumentation scope of the wrappers'
 * spans, the collector's `/healthz` and `--version`, and the scope of exported
 * chains. Written here rather than read from package.json so the library
 * reads no file at import; test/contract.test.ts keeps it in step with
 * package.json.
 */
export const PACKAGE_NAME = 'hoptrace';
export const VERSION = '0.1.0';
