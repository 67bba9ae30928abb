// V8 flags the collector and `hoptrace import` run with: a 16 MiB semi-space
// (V8's default on a machine with plenty of memory is 64 MiB, so the young
// generation alone holds 128 MiB of resident memory). Read by hoptrace.js,
// which starts those commands with them, and by the benchmarks' collector.
export const COLLECTOR_NODE_FLAGS = ['--max-semi-space-size=16'];
