/**
 * The tag-ordered queue behind a channel's unsettled deliveries and
 * unconfirmed publishes (src/internal/tag-queue.ts).
 */
import { describe, expect, it } from 'vitest';
import { TagQueue } from '../src/internal/tag-queue.ts';

const entries = <T>(q: TagQueue<T>): [number, T][] => {
  const out: [number, T][] = [];
  for (let i = q.first(); i >= 0; i = q.next(i)) out.push([q.tagAt(i), q.at(i)]);
  return out;
};

describe('TagQueue', () => {
  it('finds entries by tag and walks them in tag order, skipping the ones removed', () => {
    const q = new TagQueue<string>();
    for (let tag = 1; tag <= 5; tag++) q.set(tag, `m${tag}`);
    expect(q.delete(2)).toBe('m2');
    expect(q.delete(2)).toBeUndefined();
    expect(q.get(3)).toBe('m3');
    expect(q.get(9)).toBeUndefined();
    expect(entries(q)).toEqual([
      [1, 'm1'],
      [3, 'm3'],
      [4, 'm4'],
      [5, 'm5'],
    ]);
    expect(q.size).toBe(4);
  });

  it('lets entries be removed while it is walked (a multiple ack, ackAll)', () => {
    const q = new TagQueue<number>();
    for (let tag = 10; tag < 20; tag++) q.set(tag, tag);
    const seen: number[] = [];
    for (let i = q.first(); i >= 0; i = q.next(i)) {
      const tag = q.tagAt(i);
      if (tag > 15) break;
      seen.push(q.at(i));
      q.delete(tag);
    }
    expect(seen).toEqual([10, 11, 12, 13, 14, 15]);
    expect(entries(q).map(([t]) => t)).toEqual([16, 17, 18, 19]);
  });

  it('keeps finding the right entry across long runs with gaps, emptying and starting over', () => {
    const q = new TagQueue<number>();
    let next = 1;
    const wrong: string[] = [];
    for (let round = 0; round < 50; round++) {
      const tags: number[] = [];
      for (let i = 0; i < 300; i++) {
        // A tag now and then is never tracked (a publish nothing wanted a record of).
        if (i % 7 !== 3) {
          q.set(next, next);
          tags.push(next);
        }
        next++;
      }
      for (const t of tags) if (q.get(t) !== t) wrong.push(`get ${t}`);
      // Out of order, as individual acks come.
      for (const t of [...tags].reverse()) if (q.delete(t) !== t) wrong.push(`delete ${t}`);
      if (q.size !== 0 || q.first() !== -1) wrong.push(`round ${round} not empty`);
    }
    expect(wrong).toEqual([]);
  });

  it('refuses a tag below its front, and does not count a replaced entry twice', () => {
    const q = new TagQueue<string>();
    q.set(5, 'a');
    expect(q.set(4, 'b')).toBe(false);
    q.set(5, 'c');
    expect(q.size).toBe(1);
    expect(q.get(5)).toBe('c');
  });
});
