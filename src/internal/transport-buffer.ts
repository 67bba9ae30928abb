/**
 * The transport's bounded buffer of serialized hop records: a ring that
 * drops its oldest record when full, so a collector outage costs the oldest
 * hops, never the service's memory.
 */
export class HopBuffer {
  readonly capacity: number;
  readonly #items: (string | undefined)[];
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#items = new Array<string | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Append; when full, the oldest record goes first. @returns how many records were dropped (0 or 1) */
  push(item: string): number {
    if (this.capacity === 0) return 1;
    if (this.#size === this.capacity) {
      this.#items[this.#head] = item;
      this.#head = (this.#head + 1) % this.capacity;
      return 1;
    }
    this.#items[(this.#head + this.#size) % this.capacity] = item;
    this.#size++;
    return 0;
  }

  /** Drop the oldest record. @returns false when empty */
  dropOldest(): boolean {
    if (this.#size === 0) return false;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.capacity;
    this.#size--;
    return true;
  }

  /** Remove and return up to `maxItems` oldest records totalling at most `maxBytes` (always at least one). */
  take(maxItems: number, maxBytes: number): string[] {
    const out: string[] = [];
    let bytes = 0;
    while (this.#size > 0 && out.length < maxItems) {
      const item = this.#items[this.#head] as string;
      if (out.length > 0 && bytes + item.length > maxBytes) break;
      bytes += item.length + 1;
      out.push(item);
      this.#items[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.capacity;
      this.#size--;
    }
    return out;
  }
}
