// Pre-tokenizers of byte-level BPE vocabularies: split text into words before merges run, the
// way llama.cpp's unicode_regex_split does for each `tokenizer.ggml.pre`. A pre-tokenizer is a
// list of splitters applied in turn; each one cuts every chunk left by the previous one, keeping
// both what it matched and the gaps between matches. The hand-written scanners mirror llama.cpp's
// custom implementations of the GPT-2, Llama 3 and Qwen2 regexes (which is what llama.cpp
// actually runs for them), including their corner cases.

/** A text's code points. */
export type CodePoints = Int32Array;

/** Splits code points [start, end) into consecutive chunk lengths. */
export type Splitter = (cps: CodePoints, start: number, end: number) => number[];

// llama.cpp's whitespace set (unicode_set_whitespace); \s of its regexes means exactly this.
const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** Whitespace as llama.cpp and Unicode's White_Space define it (JavaScript's \s differs). */
export const isSpaceCodePoint = (cp: number): boolean => WHITESPACE.has(cp);

const F_LETTER = 1, F_NUMBER = 2, F_SPACE = 4, F_MARK = 8;
const IS_LETTER = /^\p{L}$/u;
const IS_NUMBER = /^\p{N}$/u;
const IS_MARK = /^\p{M}$/u;
/** Flags of the BMP's code points as they are first asked for (-1: not yet), others in a map. */
const bmpFlags = new Int8Array(0x10000).fill(-1);
const astralFlags = new Map<number, number>();

function classify(cp: number): number {
  const s = String.fromCodePoint(cp);
  return (IS_LETTER.test(s) ? F_LETTER : 0) | (IS_NUMBER.test(s) ? F_NUMBER : 0) | (WHITESPACE.has(cp) ? F_SPACE : 0)
    | (IS_MARK.test(s) ? F_MARK : 0);
}

/** Character class bits of a code point. */
function cpFlags(cp: number): number {
  if (cp < 0x10000) {
    const f = bmpFlags[cp];
    return f >= 0 ? f : (bmpFlags[cp] = classify(cp));
  }
  let f = astralFlags.get(cp);
  if (f === undefined) astralFlags.set(cp, (f = classify(cp)));
  return f;
}

const APOS = 0x27, CR = 0x0d, LF = 0x0a, SPACE = 0x20;
const lower = (cp: number) => (cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp);
const isContractionTail = (c1: number, c2: number) =>
  (c1 === 0x72 && c2 === 0x65) || (c1 === 0x76 && c2 === 0x65) || (c1 === 0x6c && c2 === 0x6c); // re ve ll
const isShortContraction = (c: number) => c === 0x73 || c === 0x74 || c === 0x6d || c === 0x64; // s t m d

/** A scanner over one chunk: `cp(i)`/`flags(i)` report "nothing" outside [start, end). */
function chunkScanner(cps: CodePoints, start: number, end: number) {
  const out: number[] = [];
  let prevEnd = start;
  return {
    cp: (i: number) => (i >= start && i < end ? cps[i] : -1),
    flags: (i: number) => (i >= start && i < end ? cpFlags(cps[i]) : 0),
    inRange: (i: number) => i >= start && i < end,
    /** Closes a chunk at `at`, returns its length. */
    add(at: number): number {
      const len = at - prevEnd;
      if (len > 0) out.push(len);
      prevEnd = at;
      return len;
    },
    out,
  };
}

/** GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S) */
export const splitGpt2: Splitter = (cps, start, end) => {
  const s = chunkScanner(cps, start, end);
  for (let pos = start; pos < end;) {
    const cp = s.cp(pos);
    const flags = s.flags(pos);
    if (cp === APOS && pos + 1 < end) {
      const n1 = s.cp(pos + 1);
      if (isShortContraction(n1)) { pos += s.add(pos + 2); continue; }
      if (pos + 2 < end && isContractionTail(n1, s.cp(pos + 2))) { pos += s.add(pos + 3); continue; }
    }
    let f2 = cp === SPACE ? s.flags(pos + 1) : flags;
    const f2InRange = cp === SPACE ? s.inRange(pos + 1) : true;
    if (f2 & F_LETTER) {
      pos += cp === SPACE ? 1 : 0;
      while (f2 & F_LETTER) f2 = s.flags(++pos);
      s.add(pos); continue;
    }
    if (f2 & F_NUMBER) {
      pos += cp === SPACE ? 1 : 0;
      while (f2 & F_NUMBER) f2 = s.flags(++pos);
      s.add(pos); continue;
    }
    if (!(f2 & (F_SPACE | F_LETTER | F_NUMBER)) && f2InRange) {
      pos += cp === SPACE ? 1 : 0;
      while (s.inRange(pos) && !(s.flags(pos) & (F_SPACE | F_LETTER | F_NUMBER))) pos++;
      s.add(pos); continue;
    }
    let nws = 0;
    while (s.flags(pos + nws) & F_SPACE) nws++;
    if (nws > 1 && s.inRange(pos + nws)) { pos += nws - 1; s.add(pos); continue; } // \s+(?!\S)
    if (nws > 0) { pos += nws; s.add(pos); continue; }
    s.add(++pos);
  }
  return s.out;
};

/**
 * Llama 3 (digits in runs of up to 3), Qwen2 (single digits) and Qwen3.5 (letters take their
 * combining marks along: `letters` is \p{L} or [\p{L}\p{M}]):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 */
function llama3Like(maxDigits: number, letters = F_LETTER): Splitter {
  return (cps, start, end) => {
    const s = chunkScanner(cps, start, end);
    for (let pos = start; pos < end;) {
      const cp = s.cp(pos);
      const flags = s.flags(pos);
      if (cp === APOS && pos + 1 < end) {
        const n1 = lower(s.cp(pos + 1));
        if (isShortContraction(n1)) { pos += s.add(pos + 2); continue; }
        if (pos + 2 < end && isContractionTail(n1, lower(s.cp(pos + 2)))) { pos += s.add(pos + 3); continue; }
      }
      if (!(cp === CR || cp === LF || flags & F_NUMBER)) {
        if (flags & letters || s.flags(pos + 1) & letters) {
          pos++;
          while (s.flags(pos) & letters) pos++;
          s.add(pos); continue;
        }
      }
      if (flags & F_NUMBER) {
        let ini = pos;
        while (s.flags(pos) & F_NUMBER) {
          if (++pos - ini >= maxDigits) { s.add(pos); ini = pos; }
        }
        s.add(pos); continue;
      }
      let f2 = cp === SPACE ? s.flags(pos + 1) : flags;
      const f2InRange = cp === SPACE ? s.inRange(pos + 1) : true;
      // llama.cpp tests the first code point's presence here, not the one after the space.
      if (!(f2 & (F_SPACE | letters | F_NUMBER)) && s.inRange(pos)) {
        pos += cp === SPACE ? 1 : 0;
        let inRange = f2InRange;
        while (!(f2 & (F_SPACE | letters | F_NUMBER)) && inRange) { f2 = s.flags(++pos); inRange = s.inRange(pos); }
        let c2 = s.cp(pos);
        while (c2 === CR || c2 === LF) c2 = s.cp(++pos);
        s.add(pos); continue;
      }
      let nws = 0, lastCrLf = 0;
      while (s.flags(pos + nws) & F_SPACE) {
        const c2 = s.cp(pos + nws);
        if (c2 === CR || c2 === LF) lastCrLf = pos + nws + 1;
        nws++;
      }
      if (lastCrLf > 0) { pos = lastCrLf; s.add(pos); continue; } // \s*[\r\n]+
      if (nws > 1 && s.inRange(pos + nws)) { pos += nws - 1; s.add(pos); continue; }
      if (nws > 0) { pos += nws; s.add(pos); continue; }
      s.add(++pos);
    }
    return s.out;
  };
}
export const splitLlama3 = llama3Like(3);
export const splitQwen2 = llama3Like(1);
export const splitQwen35 = llama3Like(1, F_LETTER | F_MARK);

// llama.cpp's \s: its own whitespace set, not JavaScript's (which has U+FEFF but not U+0085).
const WS_CLASS = "\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/**
 * A regex of llama.cpp's pre-tokenizer tables as JavaScript sees it with llama.cpp's meaning:
 * \s and \S are its whitespace set, and \p{Lu}/\p{Ll}/... are any letter (llama.cpp folds
 * every letter category into one).
 */
export function llamaRegex(source: string): RegExp {
  let out = "";
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      const n = source[i + 1];
      if (n === "s") { out += inClass ? WS_CLASS : `[${WS_CLASS}]`; i++; continue; }
      if (n === "S" && !inClass) { out += `[^${WS_CLASS}]`; i++; continue; }
      if (n === "p" && source.startsWith("{L", i + 2)) { out += "\\p{L}"; i = source.indexOf("}", i); continue; }
      out += c + n;
      i++;
      continue;
    }
    if (c === "[") inClass = true;
    else if (c === "]") inClass = false;
    out += c;
  }
  return new RegExp(out, "u");
}

/**
 * A general regex splitter: matches and the gaps between them both become chunks. With
 * `llamaWhitespace`, the regex sees text as llama.cpp's std::regex does.
 */
export function regexSplitter(re: RegExp, llamaWhitespace = false): Splitter {
  const global = new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g");
  return (cps, start, end) => {
    // llama.cpp matches with every non-ASCII whitespace character replaced by \v, so that a
    // literal range such as [ࠀ-一] does not take U+3000 (the words keep the original characters).
    const text = llamaWhitespace
      ? codePointsToString(cps.slice(start, end).map((cp) => (cp > 0x7f && WHITESPACE.has(cp) ? 0x0b : cp)))
      : codePointsToString(cps, start, end);
    const out: number[] = [];
    let last = 0; // in code points
    let lastUnits = 0;
    global.lastIndex = 0;
    for (let m = global.exec(text); m; m = global.exec(text)) {
      if (m[0].length === 0) { global.lastIndex++; continue; }
      const at = last + countCodePoints(text, lastUnits, m.index);
      if (at > last) out.push(at - last);
      const len = countCodePoints(m[0], 0, m[0].length);
      out.push(len);
      last = at + len;
      lastUnits = m.index + m[0].length;
    }
    if (end - start > last) out.push(end - start - last);
    return out;
  };
}

/** Code points to a string, in slices (a spread of a long word would overflow the argument limit). */
export function codePointsToString(cps: CodePoints | readonly number[], start = 0, end = cps.length): string {
  let out = "";
  for (let at = start; at < end; at += 4096) out += String.fromCodePoint(...cps.slice(at, Math.min(end, at + 4096)));
  return out;
}

function countCodePoints(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < to) i++;
    n++;
  }
  return n;
}

/** A text's code points (a lone surrogate is one, as the string iterator gives it). */
function codePointsOf(text: string): CodePoints {
  const cps = new Int32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; n++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { cps[n] = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); i += 2; continue; }
    }
    cps[n] = c;
    i++;
  }
  return cps.subarray(0, n);
}

/** The splitters in turn over all of `cps`: each word's length in code points. */
function wordLengths(cps: CodePoints, splitters: readonly Splitter[]): number[] {
  if (splitters.length === 1) return splitters[0](cps, 0, cps.length);
  let lengths = [cps.length];
  for (const split of splitters) {
    const next: number[] = [];
    let at = 0;
    for (const len of lengths) {
      for (const l of split(cps, at, at + len)) next.push(l);
      at += len;
    }
    lengths = next;
  }
  return lengths;
}

/** Runs the splitters in turn over the whole text; returns the words as code point arrays. */
export function preTokenize(text: string, splitters: readonly Splitter[]): CodePoints[] {
  const cps = codePointsOf(text);
  const words: CodePoints[] = [];
  let at = 0;
  for (const len of wordLengths(cps, splitters)) {
    if (len > 0) words.push(cps.subarray(at, at + len));
    at += len;
  }
  return words;
}

/**
 * The same words as where they lie in the text: [start, end) in UTF-16 units, two entries a
 * word (no string per word, for a caller that looks words up by their units).
 */
export function wordRanges(text: string, splitters: readonly Splitter[]): Int32Array {
  const cps = codePointsOf(text);
  const lengths = wordLengths(cps, splitters);
  const out = new Int32Array(2 * lengths.length);
  let at = 0, unit = 0, n = 0;
  for (const len of lengths) {
    if (len === 0) continue;
    out[n++] = unit;
    for (const end = at + len; at < end; at++) unit += cps[at] >= 0x10000 ? 2 : 1;
    out[n++] = unit;
  }
  return out.subarray(0, n);
}
