/**
 * The timeline UI: static files from the built UI directory, and
 * `index.html` for any other GET outside `/api` and `/v1` (client-side
 * routes). When the UI is not built, `/` says how to build it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { Router } from 'express';

/** Paths the UI never answers: the API's own 404s stay JSON. */
const NOT_UI = /^\/(api|v1)(\/|$)|^\/(healthz|metrics)$/;

export function uiRoutes(uiDir: string): Router {
  const router = Router();
  const index = join(uiDir, 'index.html');
  if (!existsSync(index)) {
    router.get('/', (_req, res) => {
      res
        .status(200)
        .type('text/plain; charset=utf-8')
        .send(
          'hoptrace collector is running, but its UI is not built.\n\n' +
            'Build it with `npm run build:ui` (output: dist/ui) and restart the collector,\n' +
            'or pass --ui-dir. The API answers under /api, ingest under /v1, health at /healthz.\n',
        );
    });
    return router;
  }
  router.use(express.static(uiDir, { index: 'index.html', maxAge: '1h', setHeaders: noCacheForHtml }));
  router.get('/{*path}', (req, res, next) => {
    // A path with a file extension that static did not find is a real 404, not a client route.
    if (NOT_UI.test(req.path) || /\.[A-Za-z0-9]+$/.test(req.path)) return next();
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(index);
  });
  return router;
}

function noCacheForHtml(res: express.Response, path: string): void {
  if (path.endsWith('.html')) res.setHeader('cache-control', 'no-cache');
}
