// The models this server serves: each is loaded into the engine and opened on the host for its
// tokenizer and chat template (src/scheduler/served-model.ts), which turn a Generation's input
// into prompt ids here (the engine only ever sees ids).

import type { Engine, LoadedModelInfo } from "./engine.ts";
import type { LoadSettings } from "../engine/protocol.ts";
import type { Generation } from "../generation.ts";
import { openModel } from "../engine/model/open.ts";
import { fitPrompt, renderPrompt, servedModel, type ServedModel, type ServedModelConfig } from "./served-model.ts";
import { TokenizerThread } from "../engine/tokenizer/thread.ts";

export { PromptError, PromptTooLong, longestTokenBytes, preparePrompt, servedModel, type ServedModel } from "./served-model.ts";

export interface ModelConfig extends ServedModelConfig {
  /** Context length and batching settings for the engine (its defaults where absent). */
  engine?: LoadSettings;
}

/**
 * Prompts up to this many bytes are tokenized on the calling thread (a millisecond or less of
 * story text); longer ones in the tokenizer thread, so that no request holds the HTTP thread
 * for long (a 2.5 MB prompt takes ~0.1-2 s depending on the text).
 */
export const INLINE_TOKENIZE_BYTES = 64 * 1024;

export class ModelRegistry {
  private readonly models = new Map<string, ServedModel>();
  private readonly tokenizerThread = new TokenizerThread();

  constructor(private readonly engine: Engine) {}

  async load(cfg: ModelConfig, onProgress?: (done: number, total: number) => void): Promise<ServedModel> {
    const info = await this.engine.load(cfg.id, cfg.ref, cfg.engine, onProgress);
    const model = hostModel(cfg, info);
    this.models.set(cfg.id, model);
    return model;
  }

  get(id: string): ServedModel | undefined {
    return this.models.get(id);
  }

  list(): ServedModel[] {
    return [...this.models.values()];
  }

  /** Prompt ids and output budget; a long prompt is tokenized off this thread. */
  async prepare(model: ServedModel, gen: Generation): Promise<{ promptIds: number[]; maxTokens: number }> {
    const prompt = renderPrompt(model, gen);
    const opts = { addBos: prompt.addBos, parseSpecial: prompt.parseSpecial };
    const ids = prompt.bytes <= INLINE_TOKENIZE_BYTES
      ? model.tokenizer.encode(prompt.text, opts)
      : await this.tokenizerThread.encode(model.ref, prompt.text, opts);
    return fitPrompt(model, gen, ids);
  }

  /** Stops the tokenizer thread. */
  close(): void {
    this.tokenizerThread.close();
  }
}

/** The host side of a model the engine has loaded: its tokenizer and chat template, read from the file. */
export function hostModel(cfg: ModelConfig, info: Pick<LoadedModelInfo, "arch" | "nCtx"> & Partial<Pick<LoadedModelInfo, "maxRunning" | "nVocab">>): ServedModel {
  const file = openModel(cfg.ref);
  try {
    return servedModel(file, cfg, info);
  } finally {
    file.close(); // the tokenizer and template keep what they need; no tensor is read here
  }
}
