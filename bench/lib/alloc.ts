/**
 * Bytes allocated on the V8 heap over a stretch of code.
 *
 * Node 24 has no allocation counter (`v8.getHeapStatistics()` reports sizes,
 * not a running total of allocations; `process.memoryUsage()` likewise). So
 * we reconstruct one from the GC profiler: between two collections the used
 * heap only grows by allocation, so the sum of (used before GC n − used after
 * GC n−1), plus the growth since the last GC, is what was allocated. It
 * counts JS heap objects only: Buffer contents live off-heap and are not in
 * it (amqplib's frame buffers, pino's SonicBoom buffer). Objects that V8
 * allocates directly in old space count as well; the estimate is good to a few
 * percent, which is plenty to compare variants.
 */
import v8 from 'node:v8';

export interface AllocationMeter {
  /** Stop measuring; returns bytes allocated and GC counts since start. */
  stop(): { bytes: number; scavenges: number; markCompacts: number; gcPauseMs: number };
}

interface GcStat {
  gcType: string;
  cost: number;
  beforeGC: { heapStatistics: { usedHeapSize: number } };
  afterGC: { heapStatistics: { usedHeapSize: number } };
}

export function startAllocationMeter(): AllocationMeter {
  const profiler = new v8.GCProfiler();
  const usedAtStart = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  return {
    stop() {
      const usedAtEnd = v8.getHeapStatistics().used_heap_size;
      const result = profiler.stop() as unknown as { statistics: GcStat[] } | undefined;
      const stats = result?.statistics ?? [];
      let bytes = 0;
      let previousAfter = usedAtStart;
      let scavenges = 0;
      let markCompacts = 0;
      let gcPauseMs = 0;
      for (const gc of stats) {
        bytes += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - previousAfter);
        previousAfter = gc.afterGC.heapStatistics.usedHeapSize;
        if (gc.gcType === 'Scavenge' || gc.gcType === 'MinorMarkSweep') scavenges++;
        else markCompacts++;
        gcPauseMs += gc.cost / 1000; // cost is in microseconds
      }
      bytes += Math.max(0, usedAtEnd - previousAfter);
      return { bytes, scavenges, markCompacts, gcPauseMs };
    },
  };
}
