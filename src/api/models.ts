// GET /v1/models, GET /v1/models/{id}, and GET /v1/models/{id}/file: the weights themselves, for
// a page that runs the model on its own GPU (the demo, the embeddable engine).

import { Elysia, t, type Static } from "elysia";
import { statSync } from "node:fs";
import type { AppContext } from "./context.ts";
import type { ServedModel } from "../scheduler/models.ts";
import { ApiError, unknownModel } from "./errors.ts";
import { fileResponse } from "./byte-ranges.ts";
import { Int, Shape } from "./common.ts";
import { documented } from "./openapi.ts";

export const ModelObject = Shape("Model", { id: t.String(), object: t.Literal("model"), created: Int(), owned_by: t.Literal("valar") });
export const ModelListObject = Shape("ModelList", { object: t.Literal("list"), data: t.Array(ModelObject) });

const WEIGHTS = { "application/octet-stream": t.String({ format: "binary" }) };
const FILE_DETAIL = documented({ 200: WEIGHTS, 206: WEIGHTS }, "The model's GGUF file (Range requests answered)");

const renderModel = (m: ServedModel): Static<typeof ModelObject> => ({ id: m.id, object: "model", created: m.created, owned_by: "valar" });

function servedModel(ctx: AppContext, id: string): ServedModel {
  const m = ctx.models.get(id);
  if (!m) throw unknownModel(id);
  return m;
}

/** The model's weights as one downloadable file: GGUF only (a Hugging Face directory is many files). */
function modelFile(ctx: AppContext, request: Request, id: string): Response {
  const m = servedModel(ctx, id);
  if (statSync(m.ref).isDirectory()) {
    throw new ApiError("not_found_error", `The model '${id}' is served from a Hugging Face directory, not one file; only GGUF models can be downloaded (convert it with \`valar convert\`).`, {
      param: "model", code: "model_file_unavailable",
    });
  }
  return fileResponse(request, m.ref);
}

export function modelsRoutes(ctx: AppContext) {
  return new Elysia({ name: "models" })
    .get("/v1/models", (): Static<typeof ModelListObject> => ({ object: "list", data: ctx.models.list().map(renderModel) }), {
      detail: documented({ 200: ModelListObject }, "List the loaded models"),
    })
    .get("/v1/models/:id", ({ params }) => renderModel(servedModel(ctx, params.id)), { detail: documented({ 200: ModelObject }, "Retrieve a model") })
    .get("/v1/models/:id/file", ({ params, request }) => modelFile(ctx, request, params.id), { detail: FILE_DETAIL })
    .head("/v1/models/:id/file", ({ params, request }) => modelFile(ctx, request, params.id), { detail: FILE_DETAIL });
}
