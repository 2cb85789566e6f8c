/**
 * Admitted hosts -> dense ids, for the scoring hot path (one lookup per report entry, a million per epoch).
 *
 * A Map<string, number> costs ~0.9 µs per lookup of a freshly parsed 42-character key on these machines (hashing
 * the string, then comparing it with the stored key, each a cache miss). Addresses are 160-bit numbers, so the
 * index parses the 40 hex digits into five 32-bit words, finds them in an open-addressing table of typed arrays
 * and compares words: exact, case-insensitive and about four times faster. Names that are not addresses
 * (possible in hand-made CLI input) go through an ordinary Map.
 */
const WORDS = 5;

/** The address's five 32-bit words in `out`, or false when `s` is not 0x and 40 hex digits (any case). */
function parseAddress(s: string, out: Int32Array): boolean {
  if (s.length !== 42 || s.charCodeAt(0) !== 48 || (s.charCodeAt(1) | 32) !== 120) return false;
  for (let w = 0; w < WORDS; w++) {
    let word = 0;
    for (let i = 2 + w * 8, end = i + 8; i < end; i++) {
      const c = s.charCodeAt(i);
      let v: number;
      if (c >= 48 && c <= 57) v = c - 48;
      else {
        const l = c | 32;
        if (l < 97 || l > 102) return false;
        v = l - 87;
      }
      word = (word << 4) | v;
    }
    out[w] = word;
  }
  return true;
}

/** Slot layout: id + 1 (0 when empty), then the address's five words, so a lookup touches one record. */
const STRIDE = 1 + WORDS;

export class HostIndex {
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly shift: number;
  private readonly others = new Map<string, number>();
  private readonly scratch = new Int32Array(WORDS);

  /** `names` must be distinct and lowercase; a name's id is its position. */
  constructor(names: readonly string[]) {
    let bits = 4;
    while (1 << bits < names.length * 2) bits++;
    this.shift = 32 - bits;
    this.mask = (1 << bits) - 1;
    this.table = new Int32Array((1 << bits) * STRIDE);
    names.forEach((name, id) => {
      if (!parseAddress(name, this.scratch)) {
        this.others.set(name, id);
        return;
      }
      let slot = this.slotOf(this.scratch);
      while (this.table[slot * STRIDE] !== 0) slot = (slot + 1) & this.mask;
      this.table[slot * STRIDE] = id + 1;
      this.table.set(this.scratch, slot * STRIDE + 1);
    });
  }

  private slotOf(w: Int32Array): number {
    return Math.imul(w[0] ^ Math.imul(w[2], 0x85ebca6b) ^ Math.imul(w[4], 0xc2b2ae35), 0x9e3779b1) >>> this.shift;
  }

  /** The id of `host` (any case), or undefined when it is not in the index. */
  get(host: string): number | undefined {
    const w = this.scratch;
    if (!parseAddress(host, w)) return this.others.get(host.toLowerCase());
    const table = this.table;
    for (let slot = this.slotOf(w); ; slot = (slot + 1) & this.mask) {
      const at = slot * STRIDE;
      const entry = table[at];
      if (entry === 0) return undefined;
      if (
        table[at + 1] === w[0] &&
        table[at + 2] === w[1] &&
        table[at + 3] === w[2] &&
        table[at + 4] === w[3] &&
        table[at + 5] === w[4]
      )
        return entry - 1;
    }
  }
}
