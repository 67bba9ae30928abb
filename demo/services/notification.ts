/** The notification service tells the family that a member was withdrawn. */
import { between, parse, sleep, type ServiceContext } from '../runtime.ts';
import type { FamilyMemberWithdrawn } from './family-account.ts';

export async function startNotificationService(ctx: ServiceContext): Promise<void> {
  const conn = await ctx.connect('notification');
  const ch = await conn.createChannel();
  await ch.prefetch(10);
  await ch.consume(ctx.names.notificationQueue, async (msg) => {
    if (!msg) return;
    const event = parse<FamilyMemberWithdrawn>(msg.content);
    await sleep(between(20, 120)); // send the e-mail
    ch.ack(msg);
    ctx.tracker.signal(`notified:${event.memberId}`);
  });
}
