// The models this server serves: each is loaded into the engine and opened on the host for its
// tokenizer and chat template (src/scheduler/served-model.ts), which turn a Generation's input
// into prompt ids here (the engine only ever sees ids).

import type { Engine, LoadedModelInfo } from "./engine.ts";
import type { LoadSettings } from "../engine/protocol.ts";
import type { CompletionWindow, Generation } from "../generation.ts";
import { openModel } from "../engine/model/open.ts";
import { preparePrompt, servedModel, type ServedModel } from "./served-model.ts";

export { PromptError, PromptTooLong, longestTokenBytes, preparePrompt, servedModel, type ServedModel } from "./served-model.ts";

export interface ModelConfig {
  id: string;
  ref: string;
  /** Completion windows this model offers (configuration; default both). */
  windows?: CompletionWindow[];
  /** Context length and batching settings for the engine (its defaults where absent). */
  engine?: LoadSettings;
}

export class ModelRegistry {
  private readonly models = new Map<string, ServedModel>();

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

  prepare(model: ServedModel, gen: Generation): { promptIds: number[]; maxTokens: number } {
    return preparePrompt(model, gen);
  }
}

/** The host side of a model the engine has loaded: its tokenizer and chat template, read from the file. */
export function hostModel(cfg: ModelConfig, info: Pick<LoadedModelInfo, "arch" | "nCtx"> & Partial<Pick<LoadedModelInfo, "maxRunning">>): ServedModel {
  const file = openModel(cfg.ref);
  try {
    return servedModel(file, cfg, info);
  } finally {
    file.close(); // the tokenizer and template keep what they need; no tensor is read here
  }
}
