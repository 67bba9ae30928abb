/** The audit service records every change to a family's membership. */
import { between, parse, sleep, type ServiceContext } from '../runtime.ts';
import type { FamilyMemberWithdrawn } from './family-account.ts';

export async function startAuditService(ctx: ServiceContext): Promise<void> {
  const conn = await ctx.connect('audit');
  const ch = await conn.createChannel();
  await ch.prefetch(10);
  await ch.consume(ctx.names.auditQueue, async (msg) => {
    if (!msg) return;
    const event = parse<FamilyMemberWithdrawn>(msg.content);
    await sleep(between(5, 30)); // append to the audit log
    ch.ack(msg);
    ctx.tracker.signal(`audited:${event.memberId}`);
  });
}
