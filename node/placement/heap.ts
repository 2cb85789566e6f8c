/**
 * An indexed binary heap of hosts with free slots, best first: the most free slots, and on a tie the host that
 * started a job least recently (its `seq`, a counter the index bumps on each start), so idle hosts take turns.
 * Each member remembers its position, so a change of one host's free slots is one sift: O(log n) insert, remove
 * and update, O(1) for the best and the second best (one of the root's children).
 */

/** What the heap orders: the host index's entries. */
export interface HeapMember {
  readonly id: string;
  /** Free slots now (capacity - inflight, > 0 while in a heap). */
  free: number;
  /** When it last started a job, as the index's counter (lower: longer ago). */
  seq: number;
  /** Its position in its heap, -1 when in none. */
  pos: number;
}

/** Whether `a` is a better pick than `b`. */
export const better = (a: HeapMember, b: HeapMember): boolean =>
  a.free > b.free || (a.free === b.free && a.seq < b.seq);

export class HostHeap<M extends HeapMember> {
  private readonly items: M[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The best member, or undefined when empty. */
  top(): M | undefined {
    return this.items[0];
  }

  /** The best member other than the one with id `avoid` (a retry's failed host), or undefined. */
  topExcept(avoid: string | undefined): M | undefined {
    const first = this.items[0];
    if (first === undefined || avoid === undefined || first.id !== avoid) return first;
    const [l, r] = [this.items[1], this.items[2]];
    if (l === undefined) return r;
    if (r === undefined) return l;
    return better(l, r) ? l : r;
  }

  has(m: M): boolean {
    return m.pos >= 0 && this.items[m.pos] === m;
  }

  push(m: M): void {
    m.pos = this.items.length;
    this.items.push(m);
    this.up(m.pos);
  }

  remove(m: M): void {
    if (!this.has(m)) return;
    const at = m.pos;
    const last = this.items.pop()!;
    m.pos = -1;
    if (last === m) return;
    this.items[at] = last;
    last.pos = at;
    this.fix(at);
  }

  /** Restores the order after `m`'s free slots or seq changed. */
  update(m: M): void {
    if (this.has(m)) this.fix(m.pos);
  }

  private fix(i: number): void {
    if (i > 0 && better(this.items[i], this.items[(i - 1) >> 1])) this.up(i);
    else this.down(i);
  }

  private up(i: number): void {
    const items = this.items;
    const m = items[i];
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!better(m, items[parent])) break;
      items[i] = items[parent];
      items[i].pos = i;
      i = parent;
    }
    items[i] = m;
    m.pos = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const m = items[i];
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const child = r < n && better(items[r], items[l]) ? r : l;
      if (!better(items[child], m)) break;
      items[i] = items[child];
      items[i].pos = i;
      i = child;
    }
    items[i] = m;
    m.pos = i;
  }
}
