// SentencePiece-style tokenizer (`tokenizer.ggml.model = llama`), as llama.cpp's llm_tokenizer_spm:
// spaces become ▁, a space is prefixed to text that starts the input or follows a special token,
// then adjacent symbols are merged greedily by the score of the token they form (best score
// first, leftmost on ties) and symbols that are no token fall back to <0xXX> byte tokens.

import { detokenize, streamDecoder, vocabPieces, type PieceSource } from "./detokenize.ts";
import { SPACE_MARK, marksBoundWords } from "./marks.ts";
import { IdBuffer } from "./id-buffer.ts";
import { WORD_HASH_SEED, WordTable, wordHash } from "./word-table.ts";
import { partitionSpecial, specialTokens } from "./special.ts";
import { TokenizerError, type DecodeOptions, type EncodeOptions, type Tokenizer } from "./types.ts";
import { vocabIds, type Vocab } from "./vocab.ts";
import { NO_TOKEN, SpmSymbols } from "./spm-symbols.ts";

const utf8 = new TextEncoder();

/** A space is merged as ▁ (SentencePiece's escape), read off the text as it is: no escaped copy is made. */
const SPACE = 0x20;
const MARK = 0x2581;

function byteToken(vocab: Vocab, byte: number): number {
  const hex = byte.toString(16).toUpperCase().padStart(2, "0");
  const id = vocab.textToId.get(`<0x${hex}>`) ?? vocab.textToId.get(String.fromCharCode(byte));
  if (id !== undefined) return id;
  // llama.cpp aborts here (std::out_of_range); a vocabulary without byte tokens gets <unk>.
  if (vocab.unkId !== null) return vocab.unkId;
  throw new TokenizerError(`vocabulary has no byte token for 0x${hex} and no unknown token`);
}

/** Words of up to this many code points merge by scanning their pairs, longer ones by a heap. */
const SCAN_WORD = 24;

/**
 * The merge's state, in arrays reused from word to word: per symbol its id, its length in UTF-16
 * units (0 once merged into its left neighbour) and its list links; the queue of candidate
 * pairs as a binary heap over parallel arrays (best score first, leftmost on ties).
 */
class MergeState {
  sym = new Int32Array(64);
  len = new Int32Array(64);
  prev = new Int32Array(64);
  next = new Int32Array(64);
  /** (mergeByScan) the token each symbol forms with its right neighbour, and its score. */
  pairToken = new Int32Array(64);
  pairScore = new Float64Array(64);
  qScore = new Float64Array(64);
  qLeft = new Int32Array(64);
  qRight = new Int32Array(64);
  qSize = new Int32Array(64);
  qToken = new Int32Array(64);
  qCount = 0;

  /** Room for n symbols (and the at most 3n pairs a merge of them queues). */
  reserve(n: number) {
    if (n > this.sym.length) {
      const cap = 2 * n;
      this.sym = new Int32Array(cap); this.len = new Int32Array(cap); this.prev = new Int32Array(cap); this.next = new Int32Array(cap);
      this.pairToken = new Int32Array(cap); this.pairScore = new Float64Array(cap);
    }
    if (3 * n > this.qScore.length) {
      const cap = 6 * n;
      this.qScore = new Float64Array(cap); this.qLeft = new Int32Array(cap); this.qRight = new Int32Array(cap);
      this.qSize = new Int32Array(cap); this.qToken = new Int32Array(cap);
    }
    this.qCount = 0;
  }

  private before(i: number, j: number): boolean {
    return this.qScore[i] > this.qScore[j] || (this.qScore[i] === this.qScore[j] && this.qLeft[i] < this.qLeft[j]);
  }

  private swap(i: number, j: number) {
    let t: number;
    t = this.qScore[i]; this.qScore[i] = this.qScore[j]; this.qScore[j] = t;
    t = this.qLeft[i]; this.qLeft[i] = this.qLeft[j]; this.qLeft[j] = t;
    t = this.qRight[i]; this.qRight[i] = this.qRight[j]; this.qRight[j] = t;
    t = this.qSize[i]; this.qSize[i] = this.qSize[j]; this.qSize[j] = t;
    t = this.qToken[i]; this.qToken[i] = this.qToken[j]; this.qToken[j] = t;
  }

  push(score: number, left: number, right: number, size: number, token: number) {
    let i = this.qCount++;
    this.qScore[i] = score; this.qLeft[i] = left; this.qRight[i] = right; this.qSize[i] = size; this.qToken[i] = token;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the best pair into slot qCount (read it there), or returns false when none is left. */
  pop(): boolean {
    if (this.qCount === 0) return false;
    const last = --this.qCount;
    this.swap(0, last);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
    return true;
  }
}

/**
 * The SentencePiece merge over a vocabulary, symbols as integers (spm-symbols.ts): llama.cpp's
 * llm_tokenizer_spm order (the best-scoring adjacent pair first, leftmost on ties; a queued pair
 * is stale once either side has changed, which its summed length shows).
 */
export class SpmMerger {
  private readonly symbols: SpmSymbols;
  private readonly state = new MergeState();
  private readonly markSymbol: number;

  constructor(private readonly vocab: Vocab) {
    this.symbols = new SpmSymbols(vocab);
    this.markSymbol = this.symbols.ofCodePoint(SPACE_MARK, 0, 1);
  }

  /** Tokenizes text[start, end), its spaces read as ▁, onto `out`. */
  segment(text: string, start: number, end: number, out: IdBuffer): void {
    const st = this.state;
    st.reserve(end - start);
    const { sym, len, prev, next } = st;
    // symbols start as code points
    let count = 0;
    for (let i = start; i < end; count++) {
      const c = text.charCodeAt(i);
      const n = c >= 0xd800 && c <= 0xdbff && i + 1 < end ? 2 : 1;
      sym[count] = c === SPACE ? this.markSymbol : this.symbols.ofCodePoint(text, i, n);
      len[count] = n;
      prev[count] = count - 1;
      next[count] = count + 1;
      i += n;
    }
    if (count === 0) return;
    next[count - 1] = -1;
    if (count <= SCAN_WORD) this.mergeByScan(count);
    else this.mergeByHeap(count);

    // A merged symbol is a token by construction (only pairs forming a token are queued), so
    // only a lone code point can be missing from the vocabulary: it goes out as its bytes.
    for (let i = 0; i !== -1; i = next[i]) {
      if (this.symbols.isToken(sym[i])) out.push(sym[i]);
      else for (const b of utf8.encode(this.symbols.text(sym[i]))) out.push(byteToken(this.vocab, b));
    }
  }

  /**
   * A short word's merge: the best pair found by a scan of the current pairs (each symbol keeps
   * the token it forms with its right neighbour), which for a dozen symbols costs less than a
   * heap; the first of equal scores wins, as the heap's leftmost does.
   */
  private mergeByScan(count: number) {
    const st = this.state;
    const { sym, len, prev, next, pairToken, pairScore } = st;
    for (let i = 0; i < count; i++) this.setPair(i);
    for (;;) {
      let best = -1, bestScore = 0;
      for (let i = 0; i !== -1; i = next[i]) {
        if (pairToken[i] !== NO_TOKEN && (best < 0 || pairScore[i] > bestScore)) { best = i; bestScore = pairScore[i]; }
      }
      if (best < 0) return;
      const right = next[best];
      sym[best] = pairToken[best];
      len[best] += len[right];
      len[right] = 0;
      next[best] = next[right];
      if (next[right] >= 0) prev[next[right]] = best;
      if (prev[best] >= 0) this.setPair(prev[best]);
      this.setPair(best);
    }
  }

  /** The token symbol i forms with its right neighbour, and its score. */
  private setPair(i: number) {
    const st = this.state;
    const r = st.next[i];
    const token = r < 0 ? NO_TOKEN : this.symbols.joined(st.sym[i], st.sym[r]);
    st.pairToken[i] = token;
    if (token !== NO_TOKEN) st.pairScore[i] = this.vocab.scores[token];
  }

  /** A long word's merge: candidate pairs in a heap, stale ones skipped when they come up. */
  private mergeByHeap(count: number) {
    const st = this.state;
    const { sym, len, prev, next } = st;
    for (let i = 1; i < count; i++) this.tryAdd(i - 1, i);
    while (st.pop()) {
      const q = st.qCount;
      const left = st.qLeft[q], right = st.qRight[q];
      // Stale: one side was merged away or grew since this pair was queued.
      if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== st.qSize[q]) continue;
      sym[left] = st.qToken[q];
      len[left] += len[right];
      len[right] = 0;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      this.tryAdd(prev[left], left);
      this.tryAdd(left, next[left]);
    }
  }

  private tryAdd(left: number, right: number) {
    if (left === -1 || right === -1) return;
    const st = this.state;
    const token = this.symbols.joined(st.sym[left], st.sym[right]);
    if (token === NO_TOKEN) return;
    st.push(this.vocab.scores[token], left, right, st.len[left] + st.len[right], token);
  }
}

const mergers = new WeakMap<Vocab, SpmMerger>();

/** The merger of a vocabulary (its split table is built once). */
function mergerFor(vocab: Vocab): SpmMerger {
  let m = mergers.get(vocab);
  if (!m) mergers.set(vocab, (m = new SpmMerger(vocab)));
  return m;
}

/** Tokenizes one run of plain text (spaces as ▁) in one merge, not word by word. */
export function spmSegment(vocab: Vocab, text: string, out: number[]): void {
  const ids = new IdBuffer();
  mergerFor(vocab).segment(text, 0, text.length, ids);
  for (const id of ids.toArray()) out.push(id);
}

/** About how many ids a UTF-16 unit of text gives (English prose about 0.27, few-repeat words 0.21). */
const EXPECTED_IDS_PER_UNIT = 0.3;

const isMark = (c: number) => c === SPACE || c === MARK;

/**
 * Tokenizes a text word by word (words start at a ▁ that follows a non-▁, see marks.ts), each
 * word's ids from the table when it was merged before. `prefix`: a space goes before the text.
 */
function mergeWords(merger: SpmMerger, table: WordTable, text: string, prefix: boolean, out: IdBuffer): void {
  const word = (s: string, start: number, end: number, h: number) => {
    if (table.emit(s, start, end, h, out)) return;
    const from = out.length;
    merger.segment(s, start, end, out);
    table.add(s, start, end, h, out.data, from, out.length);
  };
  // The first word ends at the first boundary whatever the prefix (a ▁ before the text is no
  // non-▁); with the prefix it is a short string of its own.
  let first = 1;
  while (first < text.length && !(isMark(text.charCodeAt(first)) && !isMark(text.charCodeAt(first - 1)))) first++;
  first = Math.min(first, text.length);
  const head = prefix ? " " + text.slice(0, first) : text.slice(0, first);
  let h = WORD_HASH_SEED;
  for (let i = 0; i < head.length; i++) h = wordHash(h, head.charCodeAt(i));
  if (head.length > 0) word(head, 0, head.length, h);

  let start = first;
  let prevMark = true; // text[first] is a mark: no boundary there, it starts the word
  h = WORD_HASH_SEED;
  for (let i = first; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const mark = c === SPACE || c === MARK;
    if (mark && !prevMark) {
      word(text, start, i, h);
      start = i;
      h = WORD_HASH_SEED;
    }
    prevMark = mark;
    h = wordHash(h, c);
  }
  if (start < text.length) word(text, start, text.length, h);
}

export function spmPieces(vocab: Vocab): PieceSource {
  return vocabPieces(vocab, (text) => utf8.encode(text.replaceAll(SPACE_MARK, " ")));
}

export function createSpmTokenizer(vocab: Vocab): Tokenizer {
  const specials = specialTokens(vocab);
  // Word by word where the vocabulary makes that exact (see marks.ts), else the text whole.
  const merger = mergerFor(vocab);
  const table = marksBoundWords(vocab.tokens) ? new WordTable() : null;
  const merge = (text: string, prefix: boolean, out: IdBuffer) => {
    if (table) return mergeWords(merger, table, text, prefix, out);
    const whole = prefix ? " " + text : text;
    merger.segment(whole, 0, whole.length, out);
  };
  const pieces = spmPieces(vocab);
  const rules = { stripFirstSpace: vocab.addSpacePrefix, cleanSpaces: false };
  return {
    kind: "llama",
    ...vocabIds(vocab),
    encode(text: string, opts: EncodeOptions = {}): number[] {
      const out = new IdBuffer(Math.ceil(EXPECTED_IDS_PER_UNIT * text.length) + 8);
      const addBos = opts.addBos ?? vocab.addBos;
      if (addBos && vocab.bosId !== null) out.push(vocab.bosId);
      let prevSpecial = true; // the first text gets the space prefix, as text after a special token does
      for (const fragment of partitionSpecial(text, specials, opts.parseSpecial ?? false)) {
        if ("id" in fragment) { out.push(fragment.id); prevSpecial = true; continue; }
        merge(fragment.text, vocab.addSpacePrefix && prevSpecial, out);
        prevSpecial = false;
      }
      if ((opts.addBos ?? true) && vocab.addEos && vocab.eosId !== null) out.push(vocab.eosId);
      return out.toArray();
    },
    decode: (ids: number[], opts?: DecodeOptions) => detokenize(pieces, ids, rules, opts),
    decoder: (opts?: DecodeOptions) => streamDecoder(pieces, opts),
    tokenText: (id: number) => vocab.tokens[id] ?? "",
  };
}
