// The request and response shapes of the in-page client: OpenAI's Chat Completions types, as
// WebLLM's `MLCEngine` takes and returns them (same names, same fields), so an app written for
// one runs on the other with its import changed.

export type ChatRole = "system" | "developer" | "user" | "assistant";

export interface ChatCompletionContentPartText {
  type: "text";
  text: string;
}

export interface ChatCompletionMessageParam {
  role: ChatRole;
  content: string | ChatCompletionContentPartText[] | null;
  name?: string;
}

export type ResponseFormat =
  | { type: "text" }
  /** `schema`: WebLLM's JSON-schema string for json_object; OpenAI's form is json_schema. */
  | { type: "json_object"; schema?: string }
  | { type: "json_schema"; json_schema: { name: string; description?: string; schema?: Record<string, unknown>; strict?: boolean | null } };

export interface ChatCompletionRequestBase {
  messages: ChatCompletionMessageParam[];
  /** Ignored: the engine runs the model it loaded (WebLLM picks among several by this). */
  model?: string | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  /** 0 to 2; default 1. 0 is greedy. */
  temperature?: number | null;
  /** 0 to 1; default 1. */
  top_p?: number | null;
  seed?: number | null;
  /** Only 1. */
  n?: number | null;
  response_format?: ResponseFormat | null;
  stream_options?: { include_usage?: boolean } | null;
}

export interface ChatCompletionRequestNonStreaming extends ChatCompletionRequestBase {
  stream?: false | null;
}

export interface ChatCompletionRequestStreaming extends ChatCompletionRequestBase {
  stream: true;
}

export type ChatCompletionRequest = ChatCompletionRequestNonStreaming | ChatCompletionRequestStreaming;

/** "abort": interrupted by interruptGenerate() or by leaving the stream (WebLLM's value). */
export type ChatCompletionFinishReason = "stop" | "length" | "abort";

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  extra: {
    e2e_latency_s: number;
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    time_to_first_token_s: number;
  };
}

export interface ChatCompletion {
  id: string;
  object: "chat.completion";
  created: number;
  model: string;
  choices: {
    index: number;
    message: { role: "assistant"; content: string | null };
    finish_reason: ChatCompletionFinishReason;
    logprobs: null;
  }[];
  usage: CompletionUsage;
}

export interface ChatCompletionChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: {
    index: number;
    delta: { role?: "assistant"; content?: string };
    finish_reason: ChatCompletionFinishReason | null;
    logprobs: null;
  }[];
  /** On the last chunk (choices empty) when stream_options.include_usage is set. */
  usage?: CompletionUsage;
}

/** What loading reports (WebLLM's initProgressCallback argument). */
export interface InitProgressReport {
  /** 0 to 1. */
  progress: number;
  /** Seconds since loading began. */
  timeElapsed: number;
  text: string;
}

export type InitProgressCallback = (report: InitProgressReport) => void;
