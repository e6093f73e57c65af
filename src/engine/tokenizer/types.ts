// The tokenizer contract every model kind implements. The engine and the API layers see only
// this; which algorithm sits behind it is chosen from the model file's data (see index.ts).

export interface EncodeOptions {
  /** Prepend BOS. Defaults to the model's own setting (`tokenizer.ggml.add_bos_token`). */
  addBos?: boolean;
  /**
   * Match control tokens (`<s>`, `<|im_start|>`, ...) written in the text as single ids. Off by
   * default, as in llama.cpp: user text must not be able to forge a control token.
   * User-defined tokens are always matched.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out control and unknown tokens (default true, as node-llama-cpp's detokenize). */
  skipSpecial?: boolean;
}

export interface StreamDecoder {
  /** Text made complete by this id; bytes of an unfinished UTF-8 character are held back. */
  push(id: number): string;
  /** Whatever is still held back (an incomplete character comes out as U+FFFD). */
  flush(): string;
}

export interface Tokenizer {
  /** The tokenizer family: "llama" (SentencePiece), "gpt2" (byte-level BPE) or "hf-bpe" (tokenizer.json). */
  kind: string;
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
  /** ids that end generation: eos plus eot/eom-like control tokens (e.g. <|im_end|>, <|eot_id|>) */
  stopIds: number[];
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: number[], opts?: DecodeOptions): string;
  /** incremental decoder for streaming: push ids, get text that is complete (never splits a UTF-8 char) */
  decoder(opts?: DecodeOptions): StreamDecoder;
  /** The token's stored text (`▁the`, `<0x0A>`, `Ġthe`, `<|im_end|>`). */
  tokenText(id: number): string;
}

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
export enum TokenType {
  UNDEFINED = 0, NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6,
}

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}
