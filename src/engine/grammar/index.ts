// Constrained decoding: the allowed-token mask for each step of a generation whose output must be
// JSON (json_object), JSON valid against a schema (json_schema), or calls of given tools in the
// chat template's tool-call format (tool_calls, for tool_choice "required" or a named function),
// built on xgrammar.
//
// The engine makes one GrammarFactory per loaded model, compiles the request's constraint once
// per generation (compiled grammars are cached by schema text), and per token: fills the mask,
// samples with masked ids excluded, and accepts the sampled id. Once the structure is complete
// the mask allows only stop ids, so the model's own EOS ends the generation.

import { GrammarCompileError, JSON_LAYOUT, planConstraint, type OutputConstraint, type SchemaPlan } from "./constraint.ts";
import { buildGrammarVocab, type GrammarVocab } from "./vocab.ts";
import { XGrammarAbort, XGrammarInstance, type XGrammar } from "./xgrammar-runtime.ts";
import type { Tokenizer } from "../tokenizer/index.ts";

export { GrammarCompileError, TOOL_CALL_FORMATS, type OutputConstraint, type ToolCallFormat, type ToolSpec } from "./constraint.ts";
export { buildGrammarVocab, type GrammarVocab, type VocabType } from "./vocab.ts";

export interface GrammarMatcher {
  /** Fill a bitmask (Uint32Array of ceil(nVocab/32) words; bit set = allowed) for the next token. */
  fillNextTokenBitmask(mask: Uint32Array): void;
  /** Advances on an allowed token; false (state unchanged) if the token violates the grammar. */
  acceptToken(id: number): boolean;
  /** A stop token was accepted after a complete structure: generation is over. */
  isTerminated(): boolean;
  dispose(): void;
}

export interface CompiledGrammar {
  /** A fresh matcher at the start of the structure; take it right after compile() (see the cache). */
  matcher(): GrammarMatcher;
}

export interface GrammarFactory {
  readonly vocab: GrammarVocab;
  compile(c: OutputConstraint): Promise<CompiledGrammar>;
}

/** Words in a mask for a vocabulary of nVocab ids. */
export const maskWords = (nVocab: number): number => Math.ceil(nVocab / 32);

/**
 * Sets the logits of masked ids to -Infinity (the host-side equivalent of what the GPU sampler
 * does with the uploaded mask). Returns how many ids stay allowed: 0 means the vocabulary cannot
 * continue the structure, and the generation must end rather than sample.
 */
export function applyTokenBitmask(logits: Float32Array, mask: Uint32Array): number {
  let allowed = 0;
  for (let id = 0; id < logits.length; id++) {
    if ((mask[id >>> 5] >>> (id & 31)) & 1) allowed++;
    else logits[id] = -Infinity;
  }
  return allowed;
}

// ---------------------------------------------------------------------------------------------
// The raw embind handles (the package's wrappers are async even where the work is synchronous).

interface IntVectorHandle { size(): number; get(i: number): number; delete(): void }
interface MatcherHandle {
  AcceptToken(id: number, verbose: boolean): boolean;
  GetNextTokenBitmask(vocabSize: number): IntVectorHandle;
  IsTerminated(): boolean;
  delete(): void;
}
type MatcherCtor = new (compiled: unknown, overrideStopTokens: undefined, terminateWithoutStopToken: boolean, maxRollbackTokens: number) => MatcherHandle;
type Handle<T> = { handle: T };

// ---------------------------------------------------------------------------------------------
// Schema checks without a model (for the API's 400s)

let validator: Promise<XGrammarInstance> | null = null;

/** Compiles the constraint's schema to a grammar without a vocabulary; throws GrammarCompileError. */
export async function validateConstraint(c: OutputConstraint): Promise<void> {
  const plan = planConstraint(c);
  await checkSchema(plan);
}

type Compiler = Awaited<ReturnType<XGrammar["GrammarCompiler"]["createGrammarCompiler"]>>;
type Compiled = Awaited<ReturnType<Compiler["compileBuiltinJSONGrammar"]>>;
type PlanOf<K extends SchemaPlan["kind"]> = Extract<SchemaPlan, { kind: K }>;

// For each kind of plan: the grammar alone (a check, no vocabulary needed) and the compiled form.
// JSON schemas go through their EBNF text, which is repaired first (see jsonSchemaEBNF).
const BUILD: { [K in SchemaPlan["kind"]]: {
  grammar(xg: XGrammar, plan: PlanOf<K>): Promise<{ dispose(): void }>;
  compile(xg: XGrammar, compiler: Compiler, plan: PlanOf<K>): Promise<Compiled>;
} } = {
  json_schema: {
    grammar: async (xg, p) => xg.Grammar.fromEBNF(await jsonSchemaEBNF(xg, p.schema, p.strictMode)),
    compile: async (xg, compiler, p) => compiler.compileGrammar(await jsonSchemaEBNF(xg, p.schema, p.strictMode)),
  },
  tool_calls: {
    grammar: async (xg, p) => xg.Grammar.fromStructuralTag(await toolCallTag(xg, p)),
    compile: async (xg, compiler, p) => compiler.compileStructuralTag(await toolCallTag(xg, p)),
  },
  // The reasoning block, then the answer's structure, as one structural-tag sequence.
  after_reasoning: {
    grammar: async (xg, p) => xg.Grammar.fromStructuralTag(await afterReasoningTag(xg, p)),
    compile: async (xg, compiler, p) => compiler.compileStructuralTag(await afterReasoningTag(xg, p)),
  },
  // A regex goes in as a structural tag of one regex format (the package has no regex compiler of its own).
  grammar: {
    grammar: (xg, p) => (p.syntax === "regex" ? xg.Grammar.fromStructuralTag(regexTag(p.definition)) : xg.Grammar.fromEBNF(p.definition)),
    compile: (_xg, compiler, p) => (p.syntax === "regex" ? compiler.compileStructuralTag(regexTag(p.definition)) : compiler.compileGrammar(p.definition)),
  },
};

const regexTag = (pattern: string) => JSON.stringify({ type: "structural_tag", format: { type: "regex", pattern } });

/** What a plan's errors call it. */
const PLAN_NOUN: Record<SchemaPlan["kind"], string> = { json_schema: "JSON schema", tool_calls: "tool parameters schema", grammar: "grammar", after_reasoning: "JSON schema or tool parameters schema" };

// xgrammar 0.1.27 writes a string with minLength/maxLength as `[^"\\\r\n]{m,n}`, which lets raw
// control characters (a tab, U+0010) into the string: invalid JSON (found by the gpt2 test).
// The class is narrowed to what JSON allows unescaped, as its unbounded strings already are.
const LENGTH_BOUNDED_CHAR = '[^"\\\\\\r\\n]{';
const JSON_STRING_CHAR = '[^\\0-\\x1f"\\\\]{';

async function jsonSchemaEBNF(xg: XGrammar, schema: string, strictMode: boolean): Promise<string> {
  const ebnf = await xg.Testings._jsonSchemaToEBNF(schema, JSON_LAYOUT.anyWhitespace, -1, undefined, strictMode);
  return ebnf.replaceAll(LENGTH_BOUNDED_CHAR, JSON_STRING_CHAR);
}

/**
 * The calls as an xgrammar structural tag: at least one call, several (joined by the separator)
 * only if parallel. Arguments go in as the schema's EBNF rather than as a json_schema content,
 * whose whitespace cannot be set: this way they are laid out like every other JSON here.
 */
async function toolCallFormat(xg: XGrammar, p: PlanOf<"tool_calls">) {
  const tags = [];
  for (const call of p.calls) {
    const grammar = await jsonSchemaEBNF(xg, call.schema, call.strictMode);
    tags.push({ type: "tag", begin: call.begin, content: { type: "grammar", grammar }, end: call.end });
  }
  return { type: "tags_with_separator", tags, separator: p.separator, at_least_one: true, stop_after_first: !p.parallel };
}

const toolCallTag = async (xg: XGrammar, p: PlanOf<"tool_calls">) => JSON.stringify({ type: "structural_tag", format: await toolCallFormat(xg, p) });

/** A plan as a structural-tag format (what after_reasoning puts after the block). */
async function formatOfPlan(xg: XGrammar, p: SchemaPlan): Promise<unknown> {
  switch (p.kind) {
    case "json_schema": return { type: "grammar", grammar: await jsonSchemaEBNF(xg, p.schema, p.strictMode) };
    case "tool_calls": return toolCallFormat(xg, p);
    case "grammar": return p.syntax === "regex" ? { type: "regex", pattern: p.definition } : { type: "grammar", grammar: p.definition };
    case "after_reasoning": throw new GrammarCompileError("after_reasoning: cannot nest");
  }
}

async function afterReasoningTag(xg: XGrammar, p: PlanOf<"after_reasoning">): Promise<string> {
  const block = { type: "tag", begin: p.open, content: { type: "any_text" }, end: p.close };
  // Qwen3 and DeepSeek-R1 put a blank line between the block and the answer.
  const gap = { type: "regex", pattern: "\\n{0,2}" };
  return JSON.stringify({ type: "structural_tag", format: { type: "sequence", elements: [block, gap, await formatOfPlan(xg, p.then)] } });
}

const buildGrammar = (xg: XGrammar, plan: SchemaPlan) => (BUILD[plan.kind].grammar as (xg: XGrammar, p: SchemaPlan) => Promise<{ dispose(): void }>)(xg, plan);
const compilePlan = (xg: XGrammar, compiler: Compiler, plan: SchemaPlan) => (BUILD[plan.kind].compile as (xg: XGrammar, c: Compiler, p: SchemaPlan) => Promise<Compiled>)(xg, compiler, plan);

async function checkSchema(plan: SchemaPlan): Promise<void> {
  // A poisoned validator (it aborted) is replaced before the next check, once, however many
  // checks notice; so is one that failed to load.
  const seen = validator;
  const current = await seen?.catch(() => null);
  if (!current || current.poisoned) {
    if (validator === seen) validator = XGrammarInstance.load();
  }
  const instance = await validator!;
  try {
    const grammar = await instance.call((xg) => buildGrammar(xg, plan));
    grammar.dispose();
  } catch (e) {
    if (e instanceof XGrammarAbort) throw new GrammarCompileError(`invalid or unsupported ${PLAN_NOUN[plan.kind]}: ${e.reason}`);
    // Anything else (a trap such as an out-of-bounds access, a stack overflow) may have left the
    // instance's memory inconsistent: the next check gets a fresh one, not this one's damage.
    instance.poisoned = true;
    throw new GrammarCompileError(`invalid or unsupported ${PLAN_NOUN[plan.kind]}: ${(e as Error).message ?? String(e)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Per-model factory

/** A compiler over one WASM instance and the model's vocabulary. */
interface CompilerRuntime {
  instance: XGrammarInstance;
  compiler: Compiler;
  newMatcher: MatcherCtor;
}

async function createRuntime(vocab: GrammarVocab): Promise<CompilerRuntime> {
  const instance = await XGrammarInstance.load();
  return instance.call(async (xg) => {
    const info = await xg.TokenizerInfo.createTokenizerInfo(vocab.encoded, vocab.vocabType, false, vocab.nVocab, vocab.stopIds);
    // xgrammar's own cache is off: it never forgets a failed entry (a retry hangs); we cache.
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, false);
    info.dispose();
    // The embind matcher class, reached through one matcher: its wrapper is only built async.
    const probeGrammar = await compiler.compileBuiltinJSONGrammar();
    const probe = await xg.GrammarMatcher.createGrammarMatcher(probeGrammar);
    const raw = (probe as unknown as Handle<MatcherHandle>).handle;
    const newMatcher = raw.constructor as unknown as MatcherCtor;
    probe.dispose();
    probeGrammar.dispose();
    return { instance, compiler, newMatcher };
  });
}

const CACHE_ENTRIES = 64;

class XGrammarFactory implements GrammarFactory {
  private runtime: Promise<CompilerRuntime>;
  // Insertion order doubles as recency: a hit is re-inserted.
  private readonly cache = new Map<string, Promise<XCompiledGrammar>>();

  constructor(readonly vocab: GrammarVocab, first: Promise<CompilerRuntime>) {
    this.runtime = first;
  }

  compile(c: OutputConstraint): Promise<CompiledGrammar> {
    let plan: SchemaPlan;
    try {
      plan = planConstraint(c);
    } catch (e) {
      return Promise.reject(e);
    }
    const hit = this.cache.get(plan.key);
    if (hit) {
      this.cache.delete(plan.key);
      this.cache.set(plan.key, hit);
      return hit;
    }
    const pending = this.compileFresh(plan);
    this.cache.set(plan.key, pending);
    pending.catch(() => this.cache.delete(plan.key));
    while (this.cache.size > CACHE_ENTRIES) {
      const [oldest, entry] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      // Matchers hold their own reference to the grammar: disposing the handle is safe.
      entry.then((g) => g.dispose(), () => {});
    }
    return pending;
  }

  private async compileFresh(plan: SchemaPlan): Promise<XCompiledGrammar> {
    // Schema errors surface in the disposable validator, not in the instance serving matchers.
    await checkSchema(plan);
    // An instance that aborted (or a replacement that failed to load) is replaced; matchers
    // already made on the old one keep working on it.
    const seen = this.runtime;
    const current = await seen.catch(() => null);
    if (!current || current.instance.poisoned) {
      if (this.runtime === seen) this.runtime = createRuntime(this.vocab);
    }
    const runtime = await this.runtime;
    try {
      const compiled = await runtime.instance.call((xg) => compilePlan(xg, runtime.compiler, plan));
      return new XCompiledGrammar(runtime, (compiled as unknown as Handle<{ delete(): void }>).handle, this.vocab);
    } catch (e) {
      if (e instanceof XGrammarAbort) throw new GrammarCompileError(`grammar cannot be compiled: ${e.reason}`);
      throw e;
    }
  }
}

class XCompiledGrammar implements CompiledGrammar {
  private disposed = false;

  constructor(private readonly runtime: CompilerRuntime, private readonly handle: { delete(): void }, private readonly vocab: GrammarVocab) {}

  matcher(): GrammarMatcher {
    // Only reachable by holding a grammar across 64 other compiles: take matchers right away.
    if (this.disposed) throw new Error("compiled grammar was evicted from the cache; compile the constraint again");
    const raw = this.runtime.instance.callSync(() => new this.runtime.newMatcher(this.handle, undefined, false, -1));
    return new XMatcher(raw, this.runtime.instance, this.vocab.nVocab);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.handle.delete();
  }
}

class XMatcher implements GrammarMatcher {
  private disposed = false;
  private terminated = false;

  constructor(private readonly raw: MatcherHandle, private readonly instance: XGrammarInstance, private readonly nVocab: number) {}

  fillNextTokenBitmask(mask: Uint32Array): void {
    const words = maskWords(this.nVocab);
    if (mask.length < words) throw new RangeError(`token bitmask has ${mask.length} words; ${words} are needed for ${this.nVocab} tokens`);
    this.checkLive();
    if (this.terminated) { mask.fill(0, 0, words); return; }
    const vec = this.instance.callSync(() => this.raw.GetNextTokenBitmask(this.nVocab));
    try {
      for (let i = 0; i < words; i++) mask[i] = vec.get(i) >>> 0;
    } finally {
      vec.delete();
    }
  }

  acceptToken(id: number): boolean {
    this.checkLive();
    // Out-of-range ids would trip a check inside xgrammar (an abort): refuse them here.
    if (this.terminated || !Number.isInteger(id) || id < 0 || id >= this.nVocab) return false;
    const ok = this.instance.callSync(() => this.raw.AcceptToken(id, false));
    if (ok && this.raw.IsTerminated()) this.terminated = true;
    return ok;
  }

  isTerminated(): boolean {
    return this.terminated;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.raw.delete();
  }

  private checkLive(): void {
    if (this.disposed) throw new Error("grammar matcher used after dispose()");
  }
}

/** One per loaded model: the tokenizer's vocabulary prepared for xgrammar (~0.1-0.5 s for 32k tokens). */
export async function createGrammarFactory(tokenizer: Tokenizer, nVocab: number): Promise<GrammarFactory> {
  const vocab = buildGrammarVocab(tokenizer, nVocab);
  const runtime = createRuntime(vocab);
  await runtime;
  return new XGrammarFactory(vocab, runtime);
}
