/**
 * A URL safe to print in a message or a log: its password replaced by `***`.
 * Text that does not parse as a URL has any `user:password@` masked the same
 * way. One definition for the library's broker errors, the collector's
 * RabbitMQ advice and its PostgreSQL messages.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}
