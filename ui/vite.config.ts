import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

// `npm run build:ui` writes the static UI to dist/ui, which the collector
// serves at `/`. `vite --config ui/vite.config.ts` runs a dev server that
// forwards `/api` to a running collector (HOPTRACE_URL).
export default defineConfig({
  root,
  // Relative asset URLs: the UI works wherever the collector is mounted.
  base: './',
  plugins: [preact({ prefreshEnabled: false, devToolsEnabled: false })],
  build: {
    outDir: fileURLToPath(new URL('../dist/ui', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    proxy: {
      '/api': process.env.HOPTRACE_URL ?? 'http://127.0.0.1:4800',
    },
  },
});
