/**
 * The member service owns logins. When a member's credentials are reset it
 * announces the fact, `member.auth.reset`, and cares about nothing else: who
 * reacts, and how, is up to the subscribers (loose coupling).
 */
import { json, type ServiceContext } from '../runtime.ts';
import { RoutingKeys } from '../topology.ts';

export interface MemberAuthReset {
  memberId: string;
  familyId: string;
  reason: 'password-compromised' | 'account-recovery';
}

export interface MemberService {
  /** `messageId` becomes the chain's correlation id (the first message's id). */
  resetAuth(event: MemberAuthReset, messageId: string): Promise<void>;
}

export async function startMemberService(ctx: ServiceContext): Promise<MemberService> {
  const conn = await ctx.connect('member');
  const ch = await conn.createConfirmChannel();
  return {
    async resetAuth(event, messageId) {
      ch.publish(ctx.names.eventsExchange, RoutingKeys.MEMBER_AUTH_RESET, json(event), {
        messageId,
        persistent: true,
        contentType: 'application/json',
        type: RoutingKeys.MEMBER_AUTH_RESET,
      });
      await ch.waitForConfirms();
    },
  };
}
