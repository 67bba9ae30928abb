/**
 * Hidden state attached to channels and messages. One place for every
 * symbol, so no string property can collide with amqplib's or the user's.
 */

/** On an instrumented channel: the underlying amqplib channel. */
export const kRawChannel: unique symbol = Symbol('hoptrace.rawChannel');
/** On an instrumented channel: its resolved configuration. */
export const kConfig: unique symbol = Symbol('hoptrace.config');
