/** Operations: `GET /healthz` (liveness + a few figures, always open) and `GET /metrics` (Prometheus text, behind the token). */
import { Router } from 'express';
import type { Health } from '../api-types.ts';
import type { CollectorContext } from '../context.ts';
import { compileQuery } from '../query-schema.ts';

const noQuery = compileQuery({});

export function opsRoutes(ctx: CollectorContext): Router {
  const router = Router();

  router.get('/healthz', async (req, res) => {
    noQuery(req.query);
    const stats = await ctx.store.stats();
    const health: Health = {
      status: 'ok',
      version: ctx.version,
      hops: stats.hops,
      uptimeSec: Math.floor((Date.now() - ctx.startedAt) / 1000),
    };
    res.json(health);
  });

  router.get('/metrics', ctx.auth.reads, async (req, res) => {
    noQuery(req.query);
    const text = ctx.metrics.render({ store: await ctx.store.stats(), sseClients: ctx.live.clients });
    res.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });

  return router;
}
