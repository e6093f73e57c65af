// Reasoning blocks taken out of model output: whole, streamed in every chunking, counted in tokens.

import { describe, expect, test } from "bun:test";
import { ReasoningStream, opensReasoning, reasoningFormatFor, reasoningTokenCount, splitReasoning, type ReasoningMode } from "../src/reasoning.ts";

const THINK: ReasoningMode = { format: "think", startsInside: false };
const INSIDE: ReasoningMode = { format: "think", startsInside: true };

describe("splitReasoning", () => {
  const cases: [string, ReasoningMode, string | null, string][] = [
    ["<think>\nLet me see.\n</think>\n\nParis.", THINK, "Let me see.", "Paris."],
    ["  <think>a</think>b", THINK, "a", "b"],
    ["<think>\n\n</think>\n\nHi", THINK, null, "Hi"],
    ["<think>still thinking", THINK, "still thinking", ""],
    ["No block. <think>x</think>", THINK, null, "No block. <think>x</think>"],
    ["\nweighing it\n</think>\n\n42", INSIDE, "weighing it", "42"],
    ["never closed", INSIDE, "never closed", ""],
    ["<think>a</think>b</think>c", THINK, "a", "b</think>c"],
  ];
  for (const [text, mode, reasoning, content] of cases) {
    test(JSON.stringify(text), () => {
      expect(splitReasoning(text, mode)).toMatchObject({ reasoning, content });
    });
  }

  test("without a mode the text is all answer", () => {
    expect(splitReasoning("<think>a</think>b", null)).toEqual({ reasoning: null, content: "<think>a</think>b", reasoningChars: 0 });
  });
});

describe("ReasoningStream", () => {
  const texts: [string, ReasoningMode][] = [
    ["<think>\nLet me see: 2 + 2.\n\n</think>\n\nIt is 4.", THINK],
    [" \n<think>x </think> y <think>z</think>", THINK],
    ["<thin>not a block", THINK],
    ["<think>unclosed  \n", THINK],
    ["\n  ", THINK],
    ["\nI think </thin> then </think>\n\nanswer </think>", INSIDE],
    ["</think>only an answer", INSIDE],
  ];
  // Every way of cutting the text in two and three pieces, and one character at a time.
  function chunkings(text: string): string[][] {
    const out: string[][] = [[text], [...text]];
    for (let i = 1; i < text.length; i++) {
      out.push([text.slice(0, i), text.slice(i)]);
      for (let j = i + 1; j < text.length; j += 3) out.push([text.slice(0, i), text.slice(i, j), text.slice(j)]);
    }
    return out;
  }
  for (const [text, mode] of texts) {
    test(`${JSON.stringify(text)} streams to its whole split`, () => {
      const whole = splitReasoning(text, mode);
      for (const chunks of chunkings(text)) {
        const stream = new ReasoningStream(mode);
        let reasoning = "";
        let content = "";
        for (const c of [...chunks.map((c) => stream.push(c)), stream.finish()]) {
          reasoning += c.reasoning;
          content += c.content;
        }
        expect({ reasoning: reasoning || null, content }).toEqual({ reasoning: whole.reasoning, content: whole.content });
      }
    });
  }

  test("reasoning goes out before the block closes, a partial tag does not", () => {
    const stream = new ReasoningStream(THINK);
    expect(stream.push("<think>\nabc")).toEqual({ reasoning: "abc", content: "" });
    expect(stream.push(" def</th")).toEqual({ reasoning: " def", content: "" });
    expect(stream.push("ink>\n\nAn")).toEqual({ reasoning: "", content: "An" });
    expect(stream.push("swer")).toEqual({ reasoning: "", content: "swer" });
  });
});

describe("reasoningTokenCount", () => {
  const tok = (text: string) => ({ id: 0, text });
  test("counts the block's tokens, closing tag included", () => {
    const tokens = ["<think>", "\n", "hm", "</think>", "\n\n", "ok"].map(tok);
    expect(reasoningTokenCount(tokens, THINK)).toBe(4);
    expect(reasoningTokenCount(tokens, null)).toBe(0);
    expect(reasoningTokenCount(["a", "b"].map(tok), INSIDE)).toBe(2);
    expect(reasoningTokenCount(["<", "/think>x"].map(tok), INSIDE)).toBe(2);
    expect(reasoningTokenCount(["answer"].map(tok), THINK)).toBe(0);
  });
});

describe("templates", () => {
  test("a template writing <think> and </think> reasons; others do not", () => {
    expect(reasoningFormatFor("{{ '<think>\\n\\n</think>\\n\\n' }}")).toBe("think");
    expect(reasoningFormatFor("<|im_start|>{{ m.content }}")).toBeNull();
    expect(reasoningFormatFor(undefined)).toBeNull();
  });
  test("a prompt ending in an open block", () => {
    expect(opensReasoning("<|Assistant|><think>\n", "think")).toBe(true);
    expect(opensReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n", "think")).toBe(false);
    expect(opensReasoning("<|im_start|>assistant\n", "think")).toBe(false);
  });
});
