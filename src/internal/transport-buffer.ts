/**
 * The transport's buffer of serialized hop lines: a queue that knows its
 * size in records and in bytes (string length, which is the byte count of
 * the ASCII JSON pino writes), so the shipper can bound it by either and
 * drop its oldest lines when a limit is reached.
 */
export class HopBuffer {
  #items: string[] = [];
  #head = 0;
  #bytes = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Sum of the lines' lengths. */
  get bytes(): number {
    return this.#bytes;
  }

  push(item: string): void {
    this.#items.push(item);
    this.#bytes += item.length;
  }

  /** Remove the oldest line. @returns its length, or -1 when empty */
  dropOldest(): number {
    if (this.size === 0) return -1;
    const item = this.#items[this.#head] as string;
    this.#advance(1);
    this.#bytes -= item.length;
    return item.length;
  }

  /** Remove and return up to `maxItems` oldest lines totalling at most `maxBytes` (always at least one). */
  take(maxItems: number, maxBytes: number): string[] {
    const start = this.#head;
    let end = start;
    let bytes = 0;
    const last = Math.min(this.#items.length, start + maxItems);
    while (end < last) {
      const length = this.#items[end].length;
      if (end > start && bytes + length > maxBytes) break;
      bytes += length + 1;
      end++;
    }
    const out = this.#items.slice(start, end);
    this.#bytes -= bytes - out.length;
    this.#advance(end - start);
    return out;
  }

  /** Move the head on; compact once the consumed prefix is large and at least half the array. */
  #advance(n: number): void {
    this.#head += n;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 4096 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
