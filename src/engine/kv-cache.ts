// The KV cache's pages, on the host: one pool of fixed-size pages per model (the GPU holds each
// layer's K and V for page p at rows p * pageSize ...), lent to sequences and given back, and
// the prefix cache over them: a full page whose tokens are known is indexed by the hash of its
// tokens chained with its predecessors', so a later sequence whose prompt starts with the same
// tokens borrows the page instead of computing it again. A page nobody holds but the index
// knows stays cached until the pool needs it back, least recently released first; pages of
// requests that named a `prompt_cache_key` are given back only after every other cached page.
//
// Pages are only ever shared once full, and a sequence writes only positions past what it
// borrowed, so no page is written while another sequence reads it.

/** Bytes of one K or V element in the GPU's pages: f16 where shaders have it (as llama.cpp's cache), else f32. */
export const kvElementBytes = (features: { shaderF16: boolean }): number => (features.shaderF16 ? 2 : 4);

/** A page's place in the prefix index: its chain hash and its tokens (checked on every hit). */
interface Indexed {
  hash: string;
  tokens: number[];
}

export interface KvCacheStats {
  pages: number;
  pageSize: number;
  /** Held by at least one sequence. */
  used: number;
  /** Held by none, indexed: reusable until evicted. */
  cached: number;
  /** Never used, or evicted. */
  free: number;
  /** Prompt tokens served from cached pages instead of computed. */
  hitTokens: number;
  /** Cached pages taken back for new work. */
  evictions: number;
}

/** The chain hash of a page: its tokens after its predecessor's hash (two 32-bit FNV-1a lanes). */
export function pageHash(parent: string, tokens: ArrayLike<number>): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < parent.length; i++) {
    const c = parent.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    for (let s = 0; s < 32; s += 8) {
      const byte = (t >>> s) & 0xff;
      a = Math.imul(a ^ byte, 0x01000193);
      b = Math.imul(b ^ byte, 0x5bd1e995) ^ (b >>> 13);
    }
  }
  return (a >>> 0).toString(36) + ":" + (b >>> 0).toString(36) + ":" + tokens.length;
}

export class KvCache {
  private readonly refs: Int32Array;
  private readonly indexed: (Indexed | null)[];
  private readonly sticky: Uint8Array;
  private readonly byHash = new Map<string, number>();
  /** Never used or evicted pages, as a stack. */
  private readonly freeList: number[] = [];
  /** Cached unreferenced pages in release order (a Map keeps insertion order): oldest first. */
  private readonly lru = { plain: new Map<number, true>(), sticky: new Map<number, true>() };
  private hitTokens = 0;
  private evictions = 0;

  constructor(readonly pages: number, readonly pageSize: number) {
    if (!(Number.isInteger(pages) && pages > 0)) throw new RangeError(`the KV pool needs at least one page, got ${pages}`);
    this.refs = new Int32Array(pages);
    this.indexed = new Array(pages).fill(null);
    this.sticky = new Uint8Array(pages);
    for (let p = pages - 1; p >= 0; p--) this.freeList.push(p);
  }

  /** Pages a sequence could get now: free ones and cached ones nobody holds. */
  get available(): number {
    return this.freeList.length + this.lru.plain.size + this.lru.sticky.size;
  }

  stats(): KvCacheStats {
    const cached = this.lru.plain.size + this.lru.sticky.size;
    const free = this.freeList.length;
    return { pages: this.pages, pageSize: this.pageSize, used: this.pages - cached - free, cached, free, hitTokens: this.hitTokens, evictions: this.evictions };
  }

  /** A page for new contents (held once), or null when every page is held. */
  allocate(): number | null {
    let page = this.freeList.pop();
    if (page === undefined) {
      page = this.oldest(this.lru.plain) ?? this.oldest(this.lru.sticky);
      if (page === undefined) return null;
      this.evict(page);
    }
    this.refs[page] = 1;
    this.sticky[page] = 0;
    return page;
  }

  private oldest(lru: Map<number, true>): number | undefined {
    for (const page of lru.keys()) return page;
    return undefined;
  }

  private evict(page: number) {
    this.lru.plain.delete(page);
    this.lru.sticky.delete(page);
    const ix = this.indexed[page];
    if (ix && this.byHash.get(ix.hash) === page) this.byHash.delete(ix.hash);
    this.indexed[page] = null;
    this.evictions++;
  }

  /** Gives a held page back; an indexed page stays cached, another becomes free. */
  release(page: number): void {
    if (this.refs[page] <= 0) throw new Error(`KV page ${page} released more often than held`);
    if (--this.refs[page] > 0) return;
    if (this.indexed[page]) (this.sticky[page] ? this.lru.sticky : this.lru.plain).set(page, true);
    else this.freeList.push(page);
  }

  /**
   * The longest run of cached pages that starts `tokens` (whole pages only, at most `maxPages`),
   * each held once more for the caller, with the chain hash after the last one.
   */
  borrowPrefix(tokens: readonly number[], maxPages: number, sticky: boolean): { pages: number[]; hash: string } {
    const pages: number[] = [];
    let hash = "";
    for (let i = 0; i < maxPages; i++) {
      const chunk = tokens.slice(i * this.pageSize, (i + 1) * this.pageSize);
      if (chunk.length < this.pageSize) break;
      const next = pageHash(hash, chunk);
      const page = this.byHash.get(next);
      if (page === undefined || !sameTokens(this.indexed[page]!.tokens, chunk)) break;
      this.hold(page, sticky);
      pages.push(page);
      hash = next;
    }
    this.hitTokens += pages.length * this.pageSize;
    return { pages, hash };
  }

  private hold(page: number, sticky: boolean) {
    if (this.refs[page] === 0) {
      this.lru.plain.delete(page);
      this.lru.sticky.delete(page);
    }
    this.refs[page]++;
    if (sticky) this.sticky[page] = 1;
  }

  /**
   * Indexes a full page a sequence holds (its KV written, or submitted to be written before any
   * later step reads it) under the chain hash of `tokens` after `parent`; returns that hash. A
   * page with the same chain already indexed keeps its place (this one stays private).
   */
  publish(page: number, parent: string, tokens: readonly number[], sticky: boolean): string {
    if (tokens.length !== this.pageSize) throw new RangeError(`only full pages are indexed (${tokens.length} of ${this.pageSize} tokens)`);
    const hash = pageHash(parent, tokens);
    if (!this.byHash.has(hash) && !this.indexed[page]) {
      this.byHash.set(hash, page);
      this.indexed[page] = { hash, tokens: [...tokens] };
    }
    if (sticky) this.sticky[page] = 1;
    return hash;
  }
}

function sameTokens(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
