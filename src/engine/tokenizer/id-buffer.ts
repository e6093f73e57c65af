// Token ids as they are produced: a growable Int32Array, copied out once at the end. Pushing
// millions of ids onto a JS array costs more than the tokenizing (its reallocations and their
// garbage); typed writes do not.

export class IdBuffer {
  data: Int32Array;
  length = 0;

  /** `expected`: about how many ids will come (growing a big buffer step by step costs page faults). */
  constructor(expected = 1024) {
    this.data = new Int32Array(Math.max(16, expected));
  }

  push(id: number): void {
    if (this.length === this.data.length) this.grow(1);
    this.data[this.length++] = id;
  }

  /** Appends src[from, to). */
  append(src: Int32Array, from: number, to: number): void {
    const n = to - from;
    if (this.length + n > this.data.length) this.grow(n);
    // a loop: words are a few ids, and subarray() would allocate for each
    const data = this.data;
    let k = this.length;
    for (let i = from; i < to; i++) data[k++] = src[i];
    this.length = k;
  }

  toArray(): number[] {
    const out = new Array<number>(this.length);
    for (let i = 0; i < this.length; i++) out[i] = this.data[i];
    return out;
  }

  private grow(extra: number): void {
    const next = new Int32Array(Math.max(2 * this.data.length, this.length + extra));
    next.set(this.data.subarray(0, this.length));
    this.data = next;
  }
}
