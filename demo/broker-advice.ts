/**
 * What to do when connecting to RabbitMQ fails, from what the failure says:
 * a refused login is not a broker that is down, and telling someone to start
 * a broker that is running sends them the wrong way.
 */

/** `amqp://user:***@host:port/vhost`: a URL safe to print. */
export function redactAmqpUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  }
}

/** The sentence(s) that tell a person what to do about a failed `amqp.connect(url)`. */
export function brokerAdvice(url: string, cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown })?.code;
  let user = 'guest';
  try {
    user = decodeURIComponent(new URL(url).username) || 'guest';
  } catch {
    // keep the default
  }
  if (/ACCESS[-_]REFUSED|\b403\b/.test(message)) {
    return (
      `RabbitMQ at ${redactAmqpUrl(url)} refused the login of user "${user}". ` +
      'Check the user and password in AMQP_URL (amqp://user:password@host:5672); ' +
      'RabbitMQ accepts its default guest/guest only from localhost.'
    );
  }
  if (/NOT[-_]ALLOWED|\b530\b|vhost/i.test(message)) {
    return `RabbitMQ at ${redactAmqpUrl(url)} refused the virtual host: check the path of AMQP_URL and the user's permissions on it.`;
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return `The host of AMQP_URL (${redactAmqpUrl(url)}) does not resolve: check AMQP_URL.`;
  }
  return (
    `Cannot reach RabbitMQ at ${redactAmqpUrl(url)} (${message || code}). Start one, for example:\n` +
    '  docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3-management\n' +
    '  (or `rabbitmq-server -detached` where RabbitMQ is installed)\n' +
    'or point at yours with AMQP_URL=amqp://user:pass@host:5672.'
  );
}
