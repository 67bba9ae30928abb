/** Instrumentation scope of hoptrace's spans (kept in step with package.json). */
export const LIBRARY_NAME = 'hoptrace';
export const LIBRARY_VERSION = '0.1.0';
