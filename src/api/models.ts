// GET /v1/models and GET /v1/models/{id}.

import { Elysia } from "elysia";
import type { AppContext } from "./context.ts";
import type { ServedModel } from "../scheduler/models.ts";
import { unknownModel } from "./errors.ts";

const renderModel = (m: ServedModel) => ({ id: m.id, object: "model", created: m.created, owned_by: "valar" });

export function modelsRoutes(ctx: AppContext) {
  return new Elysia({ name: "models" })
    .get("/v1/models", () => ({ object: "list", data: ctx.models.list().map(renderModel) }))
    .get("/v1/models/:id", ({ params }) => {
      const m = ctx.models.get(params.id);
      if (!m) throw unknownModel(params.id);
      return renderModel(m);
    });
}
