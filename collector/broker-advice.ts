/**
 * What to do when connecting to RabbitMQ fails, from what the failure says.
 * Each cause gets its own advice: a refused login or a missing virtual host
 * is not a broker that is down, and telling someone to start a broker that
 * is running sends them the wrong way. Only a refused connection (nothing
 * listens there) gets the command that starts one.
 *
 * Shared by the demo, the collector's replay connection and the test helper.
 */
import { redactUrl } from '../src/contract/url.ts';

/** Why `amqp.connect(url)` failed, as far as the error tells. */
export type BrokerFailure =
  /** 403 ACCESS-REFUSED: wrong user or password (or guest from another host). */
  | 'access-refused'
  /** The broker closed the connection on `connection.open`: no such virtual host, or no permission on it. */
  | 'vhost'
  /** The host name does not resolve. */
  | 'dns'
  /** Nothing listens on that port (ECONNREFUSED). */
  | 'refused'
  /** No answer in time: a firewall, a wrong address, or a broker that does not answer. */
  | 'timeout'
  /** Something answered, but not with AMQP 0-9-1 (an HTTP port, the management port, another service). */
  | 'not-amqp'
  /** amqps:// against a plain port, or a certificate problem. */
  | 'tls'
  /** The URL itself is not an amqp:// or amqps:// URL. */
  | 'bad-url'
  | 'unknown';

export interface AdviceOptions {
  /** How the user set the URL, named in the advice. @default 'AMQP_URL' */
  setting?: string;
}

/** Classify a failed `amqp.connect(url)` by its error (amqplib's words and Node's error codes). */
export function classifyBrokerFailure(cause: unknown): BrokerFailure {
  const message = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | null)?.code;
  if (/ACCESS[-_]REFUSED|\b403\b/.test(message)) return 'access-refused';
  // RabbitMQ answers connection.open for an unknown vhost (or one the user may not use) with
  // connection.close 530 NOT_ALLOWED; amqplib reports only the unexpected frame.
  if (/NOT[-_]ALLOWED|\b530\b|vhost|Expected ConnectionOpenOk; got <ConnectionClose/i.test(message)) return 'vhost';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') return 'dns';
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ETIMEDOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || /ETIMEDOUT|timed? ?out/i.test(message)) return 'timeout';
  if (typeof code === 'string' && (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /CERT|SELF_SIGNED/.test(code))) return 'tls';
  if (/Expected amqps? |Expected amqp: or amqps:|Invalid URL/i.test(message) || code === 'ERR_INVALID_URL') return 'bad-url';
  if (/Frame size .* exceeds|Socket closed abruptly during opening handshake|during handshake|Unexpected frame|Expected connection\./i.test(message)) return 'not-amqp';
  return 'unknown';
}

function urlParts(url: string): { user: string; host: string; vhost: string } {
  try {
    const u = new URL(url);
    const path = decodeURIComponent(u.pathname.replace(/^\//, ''));
    return { user: decodeURIComponent(u.username) || 'guest', host: u.host, vhost: path === '' ? '/' : path };
  } catch {
    return { user: 'guest', host: 'the host', vhost: '/' };
  }
}

/** The sentence(s) that tell a person what to do about a failed `amqp.connect(url)`. */
export function brokerAdvice(url: string, cause: unknown, options: AdviceOptions = {}): string {
  const setting = options.setting ?? 'AMQP_URL';
  const where = redactUrl(url);
  const { user, host, vhost } = urlParts(url);
  const message = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | null)?.code;
  const said = message || String(code ?? 'unknown error');
  switch (classifyBrokerFailure(cause)) {
    case 'access-refused':
      return (
        `RabbitMQ at ${where} refused the login of user "${user}" (403 ACCESS-REFUSED): the broker is running. ` +
        `Check the user and password in ${setting} (amqp://user:password@host:5672); ` +
        'RabbitMQ accepts its default guest/guest only from localhost, so from another host or a container create a user ' +
        '(rabbitmqctl add_user NAME PASSWORD, then rabbitmqctl set_permissions -p / NAME ".*" ".*" ".*").'
      );
    case 'vhost':
      return (
        `RabbitMQ at ${where} would not open the virtual host "${vhost}" for user "${user}": it does not exist, or the user has no permissions on it. ` +
        `Check the path of ${setting} (no path, or %2F, is the default vhost "/"), ` +
        `or create it: rabbitmqctl add_vhost ${vhost} && rabbitmqctl set_permissions -p ${vhost} ${user} ".*" ".*" ".*".`
      );
    case 'dns':
      return `The host of ${setting} (${where}) does not resolve (${said}): check the host name in ${setting}.`;
    case 'refused':
      return (
        `Cannot reach RabbitMQ at ${where}: nothing accepts connections on ${host} (${said}), so no broker runs there or it listens on another port. Start one, for example:\n` +
        '  docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3-management\n' +
        '  (or `rabbitmq-server -detached` where RabbitMQ is installed)\n' +
        `or point ${setting} at yours: amqp://user:password@host:5672.`
      );
    case 'timeout':
      return (
        `RabbitMQ at ${where} did not answer in time (${said}): check the host and port in ${setting}, ` +
        'and that no firewall or security group drops the connection (AMQP uses port 5672, amqps 5671).'
      );
    case 'not-amqp':
      return (
        `Something answered at ${host}, but not as an AMQP 0-9-1 broker (${said}): ${setting} probably names another service's port ` +
        '(15672 is the management UI; AMQP is 5672, amqps 5671).'
      );
    case 'tls':
      return (
        `The TLS connection to ${where} failed (${said}): amqps:// needs the broker's TLS port (usually 5671) ` +
        `and a certificate this machine trusts; for a plain port use amqp:// in ${setting}.`
      );
    case 'bad-url':
      return `${setting} is not a RabbitMQ URL (${said}): write it as amqp://user:password@host:5672/vhost (or amqps://).`;
    case 'unknown':
      return `Cannot connect to RabbitMQ at ${where}: ${said}. Check ${setting} and that the broker is running and reachable.`;
  }
}
