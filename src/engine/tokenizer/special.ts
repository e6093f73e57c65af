// Cutting special tokens out of text before the tokenizer proper runs (llama.cpp's
// tokenizer_st_partition): every occurrence of each special token's text becomes that id, longest
// tokens first, and the text between them is tokenized normally.

import { TokenType } from "./types.ts";
import type { Vocab } from "./vocab.ts";

/** A piece of the input: text still to tokenize, or an id already decided. */
export type Fragment = { text: string } | { id: number };

export interface SpecialToken {
  id: number;
  text: string;
  /** Matched only when the caller asks for special tokens to be parsed (control, unknown). */
  onlyWhenParsing: boolean;
}

export function partitionSpecial(text: string, specials: readonly SpecialToken[], parseSpecial: boolean): Fragment[] {
  if (text === "") return [];
  let fragments: Fragment[] = [{ text }];
  for (const special of specials) {
    if (special.onlyWhenParsing && !parseSpecial) continue;
    if (special.text === "") continue;
    let next: Fragment[] | null = null;
    for (let f = 0; f < fragments.length; f++) {
      const fragment = fragments[f];
      const at = "text" in fragment ? fragment.text.indexOf(special.text) : -1;
      if (at < 0) { next?.push(fragment); continue; }
      next ??= fragments.slice(0, f);
      let rest = (fragment as { text: string }).text;
      for (let i = at; i >= 0; i = rest.indexOf(special.text)) {
        if (i > 0) next.push({ text: rest.slice(0, i) });
        next.push({ id: special.id });
        rest = rest.slice(i + special.text.length);
      }
      if (rest !== "") next.push({ text: rest });
    }
    if (next) fragments = next;
  }
  return fragments;
}

/** A GGUF vocabulary's special tokens; user-defined ones are matched even when not parsing specials. */
export function specialTokens(vocab: Vocab): SpecialToken[] {
  return vocab.specialIds.map((id) => ({
    id, text: vocab.tokens[id], onlyWhenParsing: vocab.types[id] !== TokenType.USER_DEFINED,
  }));
}
