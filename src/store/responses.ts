// Records of inference requests: created when a request is accepted, moved through
// queued -> in_progress -> completed | incomplete | failed | cancelled as it runs.

import { and, eq } from "drizzle-orm";
import type { Db } from "./db.ts";
import { responses } from "./schema.ts";
import type { Generation, GenerationResult, GenerationStatus, GenerationUsage, OutputToken } from "../generation.ts";
import type { Surface } from "../api/unsupported.ts";
import type { Principal } from "./keys.ts";

export interface StoredOutput {
  text: string;
  tokens: OutputToken[];
  finishReason: GenerationResult["finishReason"];
}

export interface ResponseRecord {
  id: string;
  surface: Surface;
  organizationId: string;
  apiKeyId: string | null;
  model: string;
  status: GenerationStatus;
  background: boolean;
  request: unknown;
  generation: Generation;
  output: StoredOutput | null;
  usage: GenerationUsage | null;
  error: { code: string; message: string } | null;
  incompleteReason: string | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
}

export interface NewRecord {
  id: string;
  surface: Surface;
  principal: Principal;
  request: unknown;
  generation: Generation;
  background?: boolean;
}

export class ResponseStore {
  constructor(private readonly db: Db) {}

  create(rec: NewRecord): ResponseRecord {
    const row = {
      id: rec.id, surface: rec.surface, organizationId: rec.principal.organizationId,
      apiKeyId: rec.principal.apiKeyId, model: rec.generation.model, status: "queued" as const,
      background: rec.background ?? false, request: rec.request, generation: rec.generation,
      createdAt: Date.now(),
    };
    this.db.insert(responses).values(row).run();
    return this.get(rec.id)!;
  }

  /** The record, or null when unknown; with `organizationId`, also null when another organization owns it. */
  get(id: string, organizationId?: string): ResponseRecord | null {
    const where = organizationId === undefined
      ? eq(responses.id, id)
      : and(eq(responses.id, id), eq(responses.organizationId, organizationId));
    const row = this.db.select().from(responses).where(where).get();
    return row ? (row as ResponseRecord) : null;
  }

  markStarted(id: string): void {
    this.db.update(responses).set({ status: "in_progress", startedAt: Date.now() }).where(eq(responses.id, id)).run();
  }

  finish(id: string, result: GenerationResult): ResponseRecord {
    const output: StoredOutput = { text: result.text, tokens: result.tokens, finishReason: result.finishReason };
    this.db.update(responses).set({
      status: result.status, output, usage: result.usage, completedAt: Date.now(),
      incompleteReason: result.status === "incomplete" ? "max_output_tokens" : null,
    }).where(eq(responses.id, id)).run();
    return this.get(id)!;
  }

  fail(id: string, error: { code: string; message: string }): ResponseRecord | null {
    this.db.update(responses).set({ status: "failed", error, completedAt: Date.now() }).where(eq(responses.id, id)).run();
    return this.get(id);
  }
}
