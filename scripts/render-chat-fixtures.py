#!/usr/bin/env python3
"""Renders test/fixtures/chat-templates/conversations.json with Python Jinja2, set up exactly as
Hugging Face transformers renders chat templates (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, its `tojson` with ensure_ascii=False, `raise_exception`,
`strftime_now`), and writes expected.json beside it. This is the independent reference that
test/chat-template.test.ts compares our @huggingface/jinja renders against.

Messages are given to the templates as transformers users give them: content a string (text
parts joined with "\\n"), tool-call arguments a dict. The clock is pinned to 2024-07-26.

Usage: python3 scripts/render-chat-fixtures.py   (needs jinja2 >= 3.1)
"""
import datetime
import json
import pathlib

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent.parent / "test" / "fixtures" / "chat-templates"
NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)
SPECIAL = {
    "smollm2-instruct": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "qwen2.5-instruct": {"bos_token": "", "eos_token": "<|im_end|>"},
    "llama-3.2-instruct": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen3": {"bos_token": "", "eos_token": "<|im_end|>"},
}


class TemplateRefused(Exception):
    pass


def raise_exception(message):
    raise TemplateRefused(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)
    return env


def as_transformers_message(m):
    content = m.get("content")
    if isinstance(content, list):
        content = "\n".join(p["text"] for p in content if "text" in p)
    out = {"role": m["role"], "content": content if content is not None else ""}
    if m.get("tool_calls"):
        out["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}}
            for c in m["tool_calls"]
        ]
    for key in ("tool_call_id", "name", "reasoning_content"):
        if key in m:
            out[key] = m[key]
    return out


def main():
    spec = json.loads((HERE / "conversations.json").read_text())
    env = environment()
    expected = {}
    for case in spec["cases"]:
        template = env.from_string((HERE / f"{case['template']}.jinja").read_text())
        variables = {
            "messages": [as_transformers_message(m) for m in spec["conversations"][case["conversation"]]],
            "tools": spec["tools"][case["tools"]] if "tools" in case else None,
            "add_generation_prompt": case["add_generation_prompt"],
            **SPECIAL[case["template"]],
            **case.get("extra", {}),
        }
        try:
            expected[case["name"]] = {"text": template.render(**variables)}
        except TemplateRefused as err:
            expected[case["name"]] = {"error": str(err)}
    (HERE / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(expected)} renders with jinja2 {jinja2.__version__}")


if __name__ == "__main__":
    main()
