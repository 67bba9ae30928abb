/**
 * The family-account service reacts to `member.auth.reset`: a member whose
 * credentials were reset is removed from the family account (policy), and
 * the service announces that fact in turn, `family.member.withdrawn`.
 */
import { between, json, parse, sleep, type ServiceContext } from '../runtime.ts';
import { RoutingKeys } from '../topology.ts';
import type { MemberAuthReset } from './member.ts';

export interface FamilyMemberWithdrawn {
  memberId: string;
  familyId: string;
  reason: string;
}

export async function startFamilyAccountService(ctx: ServiceContext): Promise<void> {
  const conn = await ctx.connect('family-account');
  const ch = await conn.createConfirmChannel();
  await ch.prefetch(10);
  await ch.consume(ctx.names.familyAccountQueue, async (msg) => {
    if (!msg) return;
    const event = parse<MemberAuthReset>(msg.content);
    await sleep(between(10, 60)); // remove the member from the family account
    const withdrawn: FamilyMemberWithdrawn = {
      memberId: event.memberId,
      familyId: event.familyId,
      reason: `auth reset: ${event.reason}`,
    };
    // Published from inside the handler: hoptrace gives it this message's
    // correlation id and this message's id as causation id.
    ch.publish(ctx.names.eventsExchange, RoutingKeys.FAMILY_MEMBER_WITHDRAWN, json(withdrawn), {
      persistent: true,
      contentType: 'application/json',
      type: RoutingKeys.FAMILY_MEMBER_WITHDRAWN,
    });
    await ch.waitForConfirms();
    ch.ack(msg);
  });
}
