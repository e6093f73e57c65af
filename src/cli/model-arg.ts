// The REF argument of info/tokenize/detokenize: a path, a directory, or hf:OWNER/REPO/FILE
// (pulled into the models directory first if missing).

import { openModel } from "../engine/model/open.ts";
import type { ModelFile } from "../engine/model/types.ts";
import { resolveModelRef } from "../hub/resolve.ts";

export async function openModelArg(ref: string): Promise<ModelFile> {
  return openModel(await resolveModelRef(ref, process.env.VALAR_MODELS_DIR || "models"));
}
