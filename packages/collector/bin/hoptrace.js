#!/usr/bin/env node
// `hoptrace` of the hoptrace-collector package. Installed, it runs the launcher that the
// build copied to dist/bin/ (beside the compiled collector). In the repository, where
// this package is an npm workspace, it runs the checkout's bin/hoptrace.js, which runs the
// TypeScript source: `npx hoptrace` works in a clone without a build.
import { existsSync } from 'node:fs';

const checkout = new URL('../../../bin/hoptrace.js', import.meta.url);
const inCheckout = existsSync(new URL('../../../collector/cli.ts', import.meta.url)) && existsSync(checkout);
await import(inCheckout ? checkout.href : new URL('../dist/bin/hoptrace.js', import.meta.url).href);
