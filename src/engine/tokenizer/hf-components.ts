// The pipeline pieces of a Hugging Face tokenizer.json, by their `type`: normalizers,
// pre-tokenizers and decoders, each built from its JSON description into a function, with the
// semantics of the `tokenizers` library. Unknown types are clear errors naming the type.

import { CHAR_TO_BYTE } from "./byte-unicode.ts";
import { spellBytes } from "./byte-words.ts";
import { codePointsToString, preTokenize, regexSplitter, splitGpt2, splitLlama3, splitQwen2, type CodePoints, type Splitter } from "./pretokenize.ts";
import { TokenizerError } from "./types.ts";

export interface Component { type: string; [key: string]: unknown }
export type Normalize = (s: string) => string;
export type DecodeStep = (tokens: string[]) => string[];
/** Pieces -> finer pieces; `atStart`: the first piece begins the input text (offset 0). */
export type PreTokenize = (pieces: string[], atStart: boolean) => string[];

const patternString = (c: Component): string => {
  const p = c.pattern as { String?: string; Regex?: string } | undefined;
  if (p?.String !== undefined) return p.String;
  throw new TokenizerError(`tokenizer.json: ${c.type} with a regex pattern is not supported`);
};

// Normalizers by type.
const NORMALIZERS: Record<string, (c: Component) => Normalize> = {
  Sequence: (c) => {
    const steps = (c.normalizers as Component[]).map(buildNormalizer);
    return (s) => steps.reduce((acc, f) => f(acc), s);
  },
  // The tokenizers library prepends only to non-empty text.
  Prepend: (c) => (s) => (s === "" ? s : (c.prepend as string) + s),
  Replace: (c) => { const from = patternString(c); const to = c.content as string; return (s) => s.replaceAll(from, to); },
  NFC: () => (s) => s.normalize("NFC"),
  NFD: () => (s) => s.normalize("NFD"),
  NFKC: () => (s) => s.normalize("NFKC"),
  NFKD: () => (s) => s.normalize("NFKD"),
  Lowercase: () => (s) => s.toLowerCase(),
};

export function buildNormalizer(c: Component | null | undefined): Normalize {
  if (!c) return (s) => s;
  const make = NORMALIZERS[c.type];
  if (!make) throw new TokenizerError(`tokenizer.json: unsupported normalizer '${c.type}' (supported: ${Object.keys(NORMALIZERS).join(", ")})`);
  return make(c);
}

// Pre-tokenizers by type: pieces -> finer pieces (a Sequence feeds each one's output to the next).
const utf8Encoder = new TextEncoder();
const cpsToString = (cps: CodePoints) => codePointsToString(cps);

// Split regexes of well-known tokenizer.json files -> the scanners llama.cpp uses for them
// (JavaScript has no `(?i:...)` groups; the scanners are exact for these patterns).
const KNOWN_SPLITS: [pattern: string, splitter: Splitter][] = [
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", splitLlama3],
  ["(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", splitQwen2],
  ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", splitGpt2],
];

const splitEach = (splitter: Splitter): PreTokenize => (pieces) =>
  pieces.flatMap((p) => preTokenize(p, [splitter]).map(cpsToString));

const PRE_TOKENIZERS: Record<string, (c: Component) => PreTokenize> = {
  Sequence: (c) => {
    const steps = (c.pretokenizers as Component[]).map(buildPreTokenizer);
    return (pieces, atStart) => steps.reduce((acc, f) => f(acc, atStart), pieces);
  },
  ByteLevel: (c) => (pieces) => pieces.flatMap((p) => {
    const text = c.add_prefix_space && !p.startsWith(" ") ? " " + p : p;
    const words = c.use_regex === false ? [text] : preTokenize(text, [splitGpt2]).map(cpsToString);
    return words.map(spellBytes);
  }),
  Split: (c) => {
    if (c.behavior !== "Isolated" || c.invert) throw new TokenizerError(`tokenizer.json: Split with behavior ${String(c.behavior)}${c.invert ? " (inverted)" : ""} is not supported (only Isolated)`);
    return splitEach(splitterOf(c));
  },
  Digits: (c) => splitEach(digitsSplitter(c)),
  Metaspace: (c) => {
    const mark = (c.replacement as string) ?? "\u2581";
    const prepend = (c.prepend_scheme as string | undefined) ?? (c.add_prefix_space === false ? "never" : "always");
    // "first" prepends only where the input text begins, not after an added token.
    return (pieces, atStart) => pieces.flatMap((p, i) => {
      let t = p.replaceAll(" ", mark);
      const wants = prepend === "always" || (prepend === "first" && atStart && i === 0);
      if (wants && !t.startsWith(mark)) t = mark + t;
      return c.split === false ? [t] : t.split(new RegExp(`(?=${mark})`, "u")).filter((w) => w !== "");
    });
  },
};

/** A Split step's splitter (the scanner llama.cpp uses for a well-known pattern, else the regex). */
function splitterOf(c: Component): Splitter {
  const pattern = c.pattern as { String?: string; Regex?: string };
  const known = KNOWN_SPLITS.find(([p]) => p === pattern.Regex)?.[1];
  if (known) return known;
  try {
    return regexSplitter(pattern.Regex !== undefined ? new RegExp(pattern.Regex, "u") : new RegExp(pattern.String!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "u"));
  } catch (e) {
    throw new TokenizerError(`tokenizer.json: Split pattern cannot be used (${(e as Error).message})`);
  }
}

const digitsSplitter = (c: Component) => regexSplitter(c.individual_digits ? /\p{N}/u : /\p{N}+/u);

/**
 * The splitters of a pre-tokenizer that only cuts text into words and then spells each in
 * GPT-2's byte alphabet (Llama 3's, Qwen2's and SmolLM's tokenizer.json: Split or Digits, then
 * ByteLevel without a prefix space), or null for any other. With them the caller cuts the text
 * into ranges (pretokenize.ts wordRanges) and spells only the words it has not seen.
 */
export function byteLevelSplitters(c: Component | null | undefined): Splitter[] | null {
  if (!c) return null;
  const steps = c.type === "Sequence" ? (c.pretokenizers as Component[]) : [c];
  const last = steps[steps.length - 1];
  if (last?.type !== "ByteLevel" || last.add_prefix_space) return null;
  const out: Splitter[] = [];
  for (const step of steps.slice(0, -1)) {
    if (step.type === "Split" && step.behavior === "Isolated" && !step.invert) out.push(splitterOf(step));
    else if (step.type === "Digits") out.push(digitsSplitter(step));
    else return null;
  }
  if (last.use_regex !== false) out.push(splitGpt2);
  return out;
}

export function buildPreTokenizer(c: Component | null | undefined): PreTokenize {
  if (!c) return (pieces) => pieces;
  const make = PRE_TOKENIZERS[c.type];
  if (!make) throw new TokenizerError(`tokenizer.json: unsupported pre_tokenizer '${c.type}' (supported: ${Object.keys(PRE_TOKENIZERS).join(", ")})`);
  return make(c);
}

export const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// ignoreBOM: a leading U+FEFF is text like any other, not a byte-order mark to drop.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

// Decoders by type, as token-list transforms.
const DECODERS: Record<string, (c: Component, streaming: boolean) => DecodeStep> = {
  Sequence: (c, streaming) => {
    const steps = (c.decoders as Component[]).map((d) => buildDecoder(d, streaming));
    return (tokens) => steps.reduce((acc, f) => f(acc), tokens);
  },
  Replace: (c) => { const from = patternString(c); const to = c.content as string; return (ts) => ts.map((t) => t.replaceAll(from, to)); },
  // Runs of <0xXX> tokens become their UTF-8 text, or one U+FFFD per byte when not valid UTF-8.
  ByteFallback: () => (ts) => {
    const out: string[] = [];
    let bytes: number[] = [];
    const flush = () => {
      if (bytes.length === 0) return;
      try { out.push(utf8Strict.decode(Uint8Array.from(bytes))); } catch { out.push("\uFFFD".repeat(bytes.length)); }
      bytes = [];
    };
    for (const t of ts) {
      const m = BYTE_TOKEN.exec(t);
      if (m) bytes.push(parseInt(m[1], 16));
      else { flush(); out.push(t); }
    }
    flush();
    return out;
  },
  Fuse: () => (ts) => [ts.join("")],
  // A stream continues text already shown, so stripping its start does not apply there.
  Strip: (c, streaming) => {
    if (streaming) return (ts) => ts;
    const ch = c.content as string, start = c.start as number, stop = c.stop as number;
    return (ts) => ts.map((t) => {
      let a = 0, b = t.length;
      for (let i = 0; i < start && t[a] === ch; i++) a++;
      for (let i = 0; i < stop && b > a && t[b - 1] === ch; i++) b--;
      return t.slice(a, b);
    });
  },
  // Each token's characters back to bytes (a token with a character outside the alphabet keeps
  // its own UTF-8), then one lossy UTF-8 read of everything.
  ByteLevel: () => (ts) => {
    const bytes: number[] = [];
    for (const t of ts) {
      const mapped = Array.from(t, (ch) => CHAR_TO_BYTE.get(ch));
      if (mapped.every((b) => b !== undefined)) bytes.push(...(mapped as number[]));
      else bytes.push(...utf8Encoder.encode(t));
    }
    return [utf8.decode(Uint8Array.from(bytes))];
  },
  // The library drops every marker of the first token (its prepended space); a stream continues
  // text already shown, so there the first token is like any other.
  Metaspace: (c, streaming) => {
    const mark = (c.replacement as string) ?? "\u2581";
    const prepend = (c.prepend_scheme as string | undefined) ?? (c.add_prefix_space === false ? "never" : "always");
    return (ts) => ts.map((t, i) => t.replaceAll(mark, i === 0 && prepend !== "never" && !streaming ? "" : " "));
  },
};

export function buildDecoder(c: Component | null | undefined, streaming = false): DecodeStep {
  if (!c) return (ts) => [ts.join(" ")];
  const make = DECODERS[c.type];
  if (!make) throw new TokenizerError(`tokenizer.json: unsupported decoder '${c.type}' (supported: ${Object.keys(DECODERS).join(", ")})`);
  return make(c, streaming);
}
