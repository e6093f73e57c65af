// Hugging Face `tokenizer.json` models with the semantics of the `tokenizers` library: added
// tokens cut out (raw ones before normalization, normalized ones after, matched by their own
// normalized text), normalizer, pre-tokenizer, BPE with byte fallback and fused unknowns, then the
// post-processor's template (BOS). Decoding runs the file's decoder chain.

import { marksBoundWords, wordsAtMarks } from "./marks.ts";
import { MAX_CACHED_WORD, WordCache } from "./word-cache.ts";
import { buildDecoder, buildNormalizer, buildPreTokenizer, byteLevelSplitters, type Component, type DecodeStep } from "./hf-components.ts";
import { IdBuffer } from "./id-buffer.ts";
import { WordTable } from "./word-table.ts";
import { emitByteLevelWords } from "./byte-words.ts";
import { Heap } from "./heap.ts";
import { isSpaceCodePoint, wordRanges } from "./pretokenize.ts";
import { TokenizerError, type DecodeOptions, type EncodeOptions, type StreamDecoder, type Tokenizer } from "./types.ts";

// ---- tokenizer.json shapes (only the parts read here) ----
interface AddedToken { id: number; content: string; special: boolean; normalized: boolean; lstrip?: boolean; rstrip?: boolean; single_word?: boolean }
interface TokenizerJson {
  model: {
    type: string; vocab: Record<string, number>; merges?: (string | [string, string])[];
    unk_token?: string | null; byte_fallback?: boolean; fuse_unk?: boolean; ignore_merges?: boolean;
    continuing_subword_prefix?: string | null; end_of_word_suffix?: string | null; dropout?: number | null;
  };
  added_tokens?: AddedToken[];
  normalizer?: Component | null;
  pre_tokenizer?: Component | null;
  post_processor?: Component | null;
  decoder?: Component | null;
}

interface AddedMatcher { pattern: string; id: number; special: boolean; lstrip?: boolean; rstrip?: boolean; singleWord?: boolean }

// The library's word characters (its regex \w): letters, marks, decimal digits, connector punctuation.
const WORD_CHAR = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;
const isWordAt = (text: string, at: number): boolean => {
  if (at < 0 || at >= text.length) return false;
  const c = text.charCodeAt(at);
  const start = c >= 0xdc00 && c <= 0xdfff && at > 0 ? at - 1 : at; // the lead of a surrogate pair
  return WORD_CHAR.test(String.fromCodePoint(text.codePointAt(start)!));
};
const isSpaceAt = (text: string, at: number): boolean => at >= 0 && at < text.length && isSpaceCodePoint(text.charCodeAt(at));

/**
 * Leftmost-longest matching of added tokens (the library's Aho-Corasick, MatchKind::LeftmostLongest),
 * with their flags: `single_word` only between non-word characters, `lstrip`/`rstrip` taking the
 * whitespace before/after along.
 */
function splitOnTokens(text: string, tokens: AddedMatcher[]): ({ text: string } | { id: number })[] {
  if (text === "") return [];
  if (tokens.length === 0) return [{ text }];
  const out: ({ text: string } | { id: number })[] = [];
  // Next occurrence of each token at or after `scan` (-1: none left), refreshed only when passed.
  const next = tokens.map((t) => text.indexOf(t.pattern));
  let scan = 0; // where matching resumes
  let done = 0; // end of what is already in `out`
  for (;;) {
    let best = -1;
    for (let i = 0; i < tokens.length; i++) {
      if (next[i] >= 0 && next[i] < scan) next[i] = text.indexOf(tokens[i].pattern, scan);
      if (next[i] < 0) continue;
      if (best < 0 || next[i] < next[best] || (next[i] === next[best] && tokens[i].pattern.length > tokens[best].pattern.length)) best = i;
    }
    if (best < 0) break;
    const token = tokens[best];
    let start = next[best], stop = start + token.pattern.length;
    scan = stop;
    if (token.singleWord && (isWordAt(text, start - 1) || isWordAt(text, stop))) continue;
    if (token.lstrip) while (start > done && isSpaceAt(text, start - 1)) start--;
    if (token.rstrip) while (isSpaceAt(text, stop)) stop++;
    if (start > done) out.push({ text: text.slice(done, start) });
    out.push({ id: token.id });
    done = scan = stop;
  }
  if (done < text.length) out.push({ text: text.slice(done) });
  return out;
}

export function createHfTokenizer(tokenizerJson: string, tokenizerConfig?: string): Tokenizer {
  let spec: TokenizerJson;
  try {
    spec = JSON.parse(tokenizerJson) as TokenizerJson;
  } catch (e) {
    throw new TokenizerError(`tokenizer.json is not valid JSON: ${(e as Error).message}`);
  }
  const config = parseConfig(tokenizerConfig);
  const model = spec.model;
  if (!model || model.type !== "BPE") throw new TokenizerError(`tokenizer.json: unsupported model type '${model?.type}' (supported: BPE)`);
  if (model.continuing_subword_prefix || model.end_of_word_suffix) {
    throw new TokenizerError("tokenizer.json: BPE with continuing_subword_prefix / end_of_word_suffix is not supported");
  }

  const vocab = new Map<string, number>(Object.entries(model.vocab));
  const added = spec.added_tokens ?? [];
  for (const t of added) vocab.set(t.content, t.id);
  const idToToken: string[] = [];
  for (const [text, id] of vocab) idToToken[id] = text;
  const vocabSize = idToToken.length;
  const specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));

  // Merges keyed by id pair: (left, right) -> rank and the id they form.
  const merges = new Map<number, { rank: number; id: number }>();
  const pairKey = (a: number, b: number) => a * vocabSize + b;
  (model.merges ?? []).forEach((m, rank) => {
    let a: string, b: string;
    if (Array.isArray(m)) [a, b] = m;
    else { const at = m.indexOf(" "); a = m.slice(0, at); b = m.slice(at + 1); }
    const ia = vocab.get(a), ib = vocab.get(b), ij = vocab.get(a + b);
    if (ia === undefined || ib === undefined || ij === undefined) return;
    const key = pairKey(ia, ib);
    if (!merges.has(key)) merges.set(key, { rank, id: ij });
  });
  const unkId = model.unk_token != null ? vocab.get(model.unk_token) ?? null : null;

  const normalize = buildNormalizer(spec.normalizer);
  const preTokenizeText = buildPreTokenizer(spec.pre_tokenizer);
  const decodeChain = buildDecoder(spec.decoder);
  const streamChain = buildDecoder(spec.decoder, true);
  const matcher = (t: AddedToken, pattern: string): AddedMatcher =>
    ({ pattern, id: t.id, special: t.special, lstrip: t.lstrip, rstrip: t.rstrip, singleWord: t.single_word });
  const rawTokens = added.filter((t) => !t.normalized).map((t) => matcher(t, t.content));
  const normTokens = added.filter((t) => t.normalized).map((t) => matcher(t, normalize(t.content)));

  // With no pre-tokenizer (SentencePiece-style BPE) the whole text is one word: cut it at its ▁
  // words where that is exact (marks.ts), so each merge is small and cached.
  const cutAtMarks = marksBoundWords(vocab.keys());
  const words = new WordCache((word) => mergeWord(word));
  const bpeWord = (word: string, out: IdBuffer) => {
    if (cutAtMarks && word.length > MAX_CACHED_WORD) {
      for (const part of wordsAtMarks(word)) words.emit(part, out);
      return;
    }
    words.emit(word, out);
  };

  // A pre-tokenizer that cuts words and spells them in the byte alphabet (most BPE files): words
  // are looked up by their text as it is, and only a new one is spelled and merged.
  const byteSplitters = byteLevelSplitters(spec.pre_tokenizer);
  const table = byteSplitters ? new WordTable() : null;
  const mergeSpelled = (spelled: string, out: IdBuffer) => { for (const id of mergeWord(spelled)) out.push(id); };

  const mergeWord = (word: string): number[] => {
    const whole = model.ignore_merges ? vocab.get(word) : undefined;
    if (whole !== undefined) return [whole];
    const ids: number[] = [];
    let unk: number | null = null; // a pending (possibly fused) unknown
    for (const ch of word) {
      const id = vocab.get(ch);
      if (id !== undefined) {
        if (unk !== null) { ids.push(unk); unk = null; }
        ids.push(id);
        continue;
      }
      if (model.byte_fallback) {
        const bytes = Array.from(new TextEncoder().encode(ch), (b) => vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`));
        if (bytes.every((b) => b !== undefined)) { ids.push(...(bytes as number[])); continue; }
      }
      if (unkId !== null) {
        if (unk !== null && !model.fuse_unk) ids.push(unk);
        unk = unkId;
      }
    }
    if (unk !== null) ids.push(unk);
    // Merge by rank, leftmost first, on a linked list of symbols.
    const next = ids.map((_, i) => (i + 1 < ids.length ? i + 1 : -1));
    const prev = ids.map((_, i) => i - 1);
    const alive = ids.map(() => true);
    const queue = new Heap<{ pos: number; rank: number; id: number }>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.pos < b.pos));
    const consider = (pos: number) => {
      if (pos < 0 || next[pos] < 0) return;
      const m = merges.get(pairKey(ids[pos], ids[next[pos]]));
      if (m) queue.push({ pos, rank: m.rank, id: m.id });
    };
    for (let i = 0; i + 1 < ids.length; i++) consider(i);
    for (let top = queue.pop(); top; top = queue.pop()) {
      const { pos } = top;
      if (!alive[pos] || next[pos] < 0) continue;
      const right = next[pos];
      if (merges.get(pairKey(ids[pos], ids[right]))?.id !== top.id) continue; // stale
      ids[pos] = top.id;
      alive[right] = false;
      next[pos] = next[right];
      if (next[right] >= 0) prev[next[right]] = pos;
      consider(prev[pos]);
      consider(pos);
    }
    return ids.filter((_, i) => alive[i]);
  };

  // The post-processor's template for a single sequence: ids before and after the text.
  const { before, after } = templateIds(spec.post_processor, vocab);
  const bosId = before.length > 0 ? before[0] : lookup(vocab, config.bos_token);
  const eosId = lookup(vocab, config.eos_token) ?? (after.length > 0 ? after[after.length - 1] : null);
  const stopIds = [...new Set([eosId, ...added.filter((t) => t.special && STOP_TEXTS.has(t.content)).map((t) => t.id)])]
    .filter((id): id is number => id !== null).sort((a, b) => a - b);

  const tokenPiece = (id: number): string => {
    const t = idToToken[id];
    if (t === undefined) throw new TokenizerError(`token id ${id} is out of range (vocabulary of ${vocabSize})`);
    return t;
  };

  return {
    kind: "hf-bpe",
    vocabSize,
    bosId,
    eosId,
    stopIds,
    encode(text: string, opts: EncodeOptions = {}): number[] {
      const parseSpecial = opts.parseSpecial ?? false;
      const usable = (ts: typeof rawTokens) => ts.filter((t) => parseSpecial || !t.special);
      const out = new IdBuffer(Math.ceil(text.length / 3) + 8);
      splitOnTokens(text, usable(rawTokens)).forEach((raw, r) => {
        if ("id" in raw) { out.push(raw.id); return; }
        splitOnTokens(normalize(raw.text), usable(normTokens)).forEach((piece, p) => {
          if ("id" in piece) { out.push(piece.id); return; }
          if (byteSplitters) return emitByteLevelWords(table!, piece.text, wordRanges(piece.text, byteSplitters), out, mergeSpelled);
          for (const word of preTokenizeText([piece.text], r === 0 && p === 0)) bpeWord(word, out);
        });
      });
      const ids = out.toArray();
      return (opts.addBos ?? true) ? [...before, ...ids, ...after] : ids;
    },
    decode(ids: number[], opts: DecodeOptions = {}): string {
      const skip = opts.skipSpecial ?? true;
      const tokens = ids.filter((id) => !(skip && specialIds.has(id))).map(tokenPiece);
      return decodeChain(tokens).join("");
    },
    decoder(opts: DecodeOptions = {}): StreamDecoder {
      return hfStreamDecoder(tokenPiece, streamChain, specialIds, opts.skipSpecial ?? true);
    },
    tokenText: (id: number) => idToToken[id] ?? "",
  };
}

/** Longer words (a whole text, without a pre-tokenizer) are not worth keeping. */

const STOP_TEXTS = new Set(["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end_of_text|>", "<end_of_turn>", "</s>", "<|end|>"]);

function lookup(vocab: Map<string, number>, token: unknown): number | null {
  const text = typeof token === "string" ? token : (token as { content?: string } | undefined)?.content;
  return text !== undefined ? vocab.get(text) ?? null : null;
}

function parseConfig(config?: string): Record<string, unknown> {
  if (!config) return {};
  try {
    return JSON.parse(config) as Record<string, unknown>;
  } catch (e) {
    throw new TokenizerError(`tokenizer_config.json is not valid JSON: ${(e as Error).message}`);
  }
}

function templateIds(pp: Component | null | undefined, vocab: Map<string, number>): { before: number[]; after: number[] } {
  const before: number[] = [], after: number[] = [];
  if (!pp || pp.type === "ByteLevel") return { before, after }; // ByteLevel only trims offsets
  if (pp.type === "Sequence") {
    for (const p of pp.processors as Component[]) {
      const part = templateIds(p, vocab);
      before.push(...part.before);
      after.push(...part.after);
    }
    return { before, after };
  }
  if (pp.type !== "TemplateProcessing") throw new TokenizerError(`tokenizer.json: unsupported post_processor '${pp.type}' (supported: TemplateProcessing, ByteLevel, Sequence)`);
  const special = pp.special_tokens as Record<string, { ids: number[] }>;
  let seenSequence = false;
  for (const item of pp.single as ({ SpecialToken: { id: string } } | { Sequence: unknown })[]) {
    if ("Sequence" in item) { seenSequence = true; continue; }
    const ids = special?.[item.SpecialToken.id]?.ids ?? [vocab.get(item.SpecialToken.id) ?? -1];
    if (ids.some((id) => id < 0)) throw new TokenizerError(`tokenizer.json: template token '${item.SpecialToken.id}' is not in the vocabulary`);
    (seenSequence ? after : before).push(...ids);
  }
  return { before, after };
}

/**
 * Streaming through the decoder chain (without its start-of-text strip): tokens are held until
 * their text no longer ends in U+FFFD, i.e. until a character split over byte tokens is whole
 * (a real U+FFFD is let through after a few tokens).
 */
function hfStreamDecoder(piece: (id: number) => string, chain: DecodeStep, specialIds: Set<number>, skip: boolean): StreamDecoder {
  let held: string[] = [];
  return {
    push(id: number): string {
      if (skip && specialIds.has(id)) return "";
      held.push(piece(id));
      const text = chain(held).join("");
      if (text.endsWith("\uFFFD") && held.length < 4) return "";
      held = [];
      return text;
    },
    flush(): string {
      const text = held.length ? chain(held).join("") : "";
      held = [];
      return text;
    },
  };
}
