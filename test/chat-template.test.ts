// Chat templates: our renders (@huggingface/jinja) of the real templates of SmolLM2-Instruct,
// Qwen2.5-Instruct, Llama-3.2-Instruct and Qwen3 (thinking on and off) must equal what Python Jinja2 produces with
// transformers' settings (expected.json, written by scripts/render-chat-fixtures.py), plus the
// plain fallback of models without a template.

import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ChatTemplateError, chatTemplateInfo, plainPrompt, renderChat, strftime,
  type ChatMessage, type ChatTemplateInfo, type ChatTool,
} from "../src/engine/chat/template.ts";
import { openModel } from "../src/engine/model/open.ts";
import { createTokenizer } from "../src/engine/tokenizer/index.ts";

const DIR = join(import.meta.dir, "fixtures", "chat-templates");
const spec = JSON.parse(readFileSync(join(DIR, "conversations.json"), "utf8")) as {
  tools: Record<string, ChatTool[]>;
  conversations: Record<string, ChatMessage[]>;
  cases: { name: string; template: string; conversation: string; tools?: string; add_generation_prompt: boolean; extra?: Record<string, unknown> }[];
};
const expected = JSON.parse(readFileSync(join(DIR, "expected.json"), "utf8")) as Record<string, { text?: string; error?: string }>;

const SPECIAL: Record<string, { bosToken: string; eosToken: string }> = {
  "smollm2-instruct": { bosToken: "<|im_start|>", eosToken: "<|im_end|>" },
  "qwen2.5-instruct": { bosToken: "", eosToken: "<|im_end|>" },
  "llama-3.2-instruct": { bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>" },
  qwen3: { bosToken: "", eosToken: "<|im_end|>" },
};
const templateInfo = (name: string): ChatTemplateInfo => ({ template: readFileSync(join(DIR, `${name}.jinja`), "utf8"), ...SPECIAL[name] });
const NOW = new Date("2024-07-26T12:00:00Z");
const MODELS = join(import.meta.dir, "..", "..", "shared", "models");

describe("real chat templates render as transformers renders them", () => {
  for (const c of spec.cases) {
    test(c.name, () => {
      const want = expected[c.name];
      expect(want).toBeDefined();
      const render = () =>
        renderChat(templateInfo(c.template), spec.conversations[c.conversation], {
          addGenerationPrompt: c.add_generation_prompt,
          tools: c.tools ? spec.tools[c.tools] : undefined,
          extra: c.extra,
          now: NOW,
        });
      if (want.error !== undefined) {
        expect(render).toThrow(ChatTemplateError);
        expect(render).toThrow(want.error);
      } else {
        expect(render().text).toBe(want.text!);
      }
    });
  }
});

describe("renders checked by hand", () => {
  test("SmolLM2: ChatML with its default system prompt", () => {
    const p = renderChat(templateInfo("smollm2-instruct"), [{ role: "user", content: "Hi" }]);
    expect(p.text).toBe(
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n" +
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(p).toMatchObject({ parseSpecial: true, source: "template" });
    // SmolLM2's BOS text is <|im_start|>, which this template writes itself: no second BOS id.
    expect(p.addBos).toBe(false);
  });

  test("Qwen2.5: no BOS, generation prompt on and off", () => {
    const msgs: ChatMessage[] = [{ role: "system", content: "S" }, { role: "user", content: "U" }];
    const on = renderChat(templateInfo("qwen2.5-instruct"), msgs);
    expect(on.text).toBe("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
    expect(on.addBos).toBeUndefined();
    const off = renderChat(templateInfo("qwen2.5-instruct"), msgs, { addGenerationPrompt: false });
    expect(off.text).toBe("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
  });

  test("Llama 3: BOS written by the template, date from strftime_now, extra keywords win", () => {
    const msgs: ChatMessage[] = [{ role: "user", content: "  Hello  " }];
    const p = renderChat(templateInfo("llama-3.2-instruct"), msgs, { now: new Date("2025-03-09T23:59:00Z") });
    expect(p.text).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n" +
        "Today Date: 09 Mar 2025\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(p.addBos).toBe(false);
    const pinned = renderChat(templateInfo("llama-3.2-instruct"), msgs, { extra: { date_string: "1 Apr 2030" } });
    expect(pinned.text).toContain("Today Date: 1 Apr 2030\n");
  });

  test("Responses-style tools render like Chat Completions tools", () => {
    const chat = spec.tools.weather;
    const fn = (chat[0] as { function: { name: string; description: string; parameters: unknown } }).function;
    const responses: ChatTool[] = [{ type: "function", name: fn.name, description: fn.description, parameters: fn.parameters }];
    const msgs = spec.conversations.tool_question;
    expect(renderChat(templateInfo("qwen2.5-instruct"), msgs, { tools: responses }).text)
      .toBe(renderChat(templateInfo("qwen2.5-instruct"), msgs, { tools: chat }).text);
  });

  test("a tool_use variant is used when tools are given", () => {
    const info: ChatTemplateInfo = { template: "plain:{{ messages[0].content }}", namedTemplates: { tool_use: "tools:{{ tools[0].function.name }}" } };
    const msgs = [{ role: "user", content: "x" }];
    expect(renderChat(info, msgs).text).toBe("plain:x");
    expect(renderChat(info, msgs, { tools: spec.tools.weather }).text).toBe("tools:get_weather");
  });
});

describe("errors are ChatTemplateError, never a crash", () => {
  test("a template that does not parse", () => {
    expect(() => renderChat({ template: "{% for m in messages %}" }, [{ role: "user", content: "x" }])).toThrow(/chat template (does not parse|failed)/);
  });
  test("raise_exception from the template", () => {
    const info = { template: "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}" };
    expect(() => renderChat(info, [{ role: "user", content: "x" }])).toThrow(
      "the model's chat template refused the conversation: Conversation roles must alternate user/assistant/user/assistant/...",
    );
  });
});

describe("strftime_now follows Python's strftime (C locale, UTC)", () => {
  test("formats", () => {
    const d = new Date("2024-02-05T07:08:09Z");
    expect(strftime(d, "%d %b %Y")).toBe("05 Feb 2024");
    expect(strftime(d, "%A, %B %e %y %H:%M:%S %I%p day %j 100%%")).toBe("Monday, February  5 24 07:08:09 07AM day 036 100%");
  });
});

describe("models without a template", () => {
  const conversation: ChatMessage[] = [
    { role: "system", content: "Stories only." },
    { role: "user", content: [{ type: "text", text: "Once upon a time" }, { type: "image_url" }] },
    { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] },
    { role: "user", content: "there was a <s> dog" },
  ];

  test("the plain fallback: message texts joined with a newline, no roles, no control tokens", () => {
    expect(plainPrompt(conversation)).toEqual({
      text: "Stories only.\nOnce upon a time\nthere was a <s> dog",
      addBos: true,
      parseSpecial: false,
      source: "plain",
    });
    expect(plainPrompt([{ role: "user", content: "Once upon a time" }])).toEqual({ text: "Once upon a time", addBos: true, parseSpecial: false, source: "plain" });
  });

  test("stories15M (GGUF) and TinyStories-656K (HF directory) have none and fall back", () => {
    for (const ref of [join(MODELS, "stories15M", "stories15M-q8_0.gguf"), join(MODELS, "tinystories-656k")]) {
      const model = openModel(ref);
      try {
        const info = chatTemplateInfo(model);
        expect(info.template).toBeUndefined();
        expect(renderChat(model, conversation)).toEqual(plainPrompt(conversation));
      } finally {
        model.close();
      }
    }
  });

  test("a one-message conversation tokenizes to llama.cpp's prompt ids (BOS, then the text)", () => {
    const ref = JSON.parse(readFileSync(join(MODELS, "stories15M", "llama.cpp-greedy-f32.json"), "utf8")) as { cases: { prompt: string; prompt_ids: number[] }[] };
    const model = openModel(join(MODELS, "stories15M", "stories15M-f32.gguf"));
    try {
      const tokenizer = createTokenizer(model);
      for (const c of ref.cases) {
        for (const p of [renderChat(model, [{ role: "user", content: c.prompt }]), plainPrompt([{ role: "user", content: c.prompt }])]) {
          expect(tokenizer.encode(p.text, { addBos: p.addBos, parseSpecial: p.parseSpecial })).toEqual(c.prompt_ids);
        }
      }
    } finally {
      model.close();
    }
  });

  test("special tokens come from the model's vocabulary", () => {
    const model = openModel(join(MODELS, "stories15M", "stories15M-q8_0.gguf"));
    try {
      expect(chatTemplateInfo(model)).toMatchObject({ bosToken: "<s>", eosToken: "</s>" });
    } finally {
      model.close();
    }
  });
});
