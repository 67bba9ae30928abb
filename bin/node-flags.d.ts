/** V8 flags the collector and `hoptrace import` run with (see node-flags.js). */
export declare const COLLECTOR_NODE_FLAGS: readonly string[];
