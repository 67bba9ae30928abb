/**
 * Entries keyed by an AMQP tag that only grows (a channel's delivery tags,
 * a ConfirmChannel's publish sequence numbers), in tag order: O(1) add,
 * lookup and removal, and iteration in tag order, without allocating per
 * entry (a Map allocates on growth, shrink and every `for…of` step). Like
 * amqplib's own window of unconfirmed publishes: an array from the lowest
 * live tag, holes where entries left, the front trimmed as it empties.
 */
export class TagQueue<T> {
  private items: (T | undefined)[] = [];
  /** Index of the first slot that may hold an entry. */
  private head = 0;
  /** The tag of slot `head`. */
  private headTag = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /**
   * Add an entry. Tags come in increasing order; one below the front or
   * absurdly far ahead of it (a channel reused in a way amqplib never does)
   * is refused: false.
   */
  set(tag: number, value: T): boolean {
    let items = this.items;
    if (this.count === 0) {
      // Empty: start over at the end of what is there (truncating would give the array's store back, to regrow).
      this.head = items.length;
      this.headTag = tag;
    }
    if (this.head > 1024 && this.head * 2 > items.length) {
      // Drop the emptied front now and then (never while someone iterates: entries are only added from outside).
      items.splice(0, this.head);
      this.head = 0;
      items = this.items;
    }
    const at = this.head + (tag - this.headTag);
    if (at < this.head || !Number.isSafeInteger(at) || at - items.length > 1_000_000) return false;
    while (items.length < at) items.push(undefined);
    if (at === items.length) items.push(value);
    else {
      if (items[at] !== undefined) this.count--;
      items[at] = value;
    }
    this.count++;
    return true;
  }

  get(tag: number): T | undefined {
    const at = this.head + (tag - this.headTag);
    return at >= this.head && at < this.items.length ? this.items[at] : undefined;
  }

  delete(tag: number): T | undefined {
    const items = this.items;
    const at = this.head + (tag - this.headTag);
    if (at < this.head || at >= items.length) return undefined;
    const value = items[at];
    if (value === undefined) return undefined;
    items[at] = undefined;
    this.count--;
    if (at === this.head) this.trimFront();
    return value;
  }

  /** Move the front past emptied slots (indices stay valid: iteration may be going on). */
  private trimFront(): void {
    const items = this.items;
    while (this.head < items.length && items[this.head] === undefined) {
      this.head++;
      this.headTag++;
    }
  }

  /** The first slot holding an entry, for iteration in tag order: `for (let i = q.first(); i >= 0; i = q.next(i))`; -1 when empty. */
  first(): number {
    return this.next(this.head - 1);
  }

  /** The slot after `i` holding an entry, or -1. */
  next(i: number): number {
    const items = this.items;
    for (let j = i + 1; j < items.length; j++) if (items[j] !== undefined) return j;
    return -1;
  }

  /** The entry in slot `i` (from {@link first} / {@link next}). */
  at(i: number): T {
    return this.items[i]!;
  }

  /** The tag of slot `i`. */
  tagAt(i: number): number {
    return this.headTag + (i - this.head);
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.count = 0;
  }
}
