#!/usr/bin/env bun
// valar: the command line. Each command lives in src/cli/<name>.ts and exports
// `run(argv): Promise<number>` (argv without the command name; the result is the exit code).
// To add one, add a row to COMMANDS. Modules load on demand, so `valar --help` stays instant.

import { ConfigError, settingsHelp } from "./config.ts";
import { UsageError } from "./cli/args.ts";

interface CommandEntry {
  summary: string;
  /** Shown by `valar COMMAND --help` and after a usage error. */
  usage: string;
  load: () => Promise<{ run(argv: string[]): Promise<number> }>;
}

const COMMANDS: Record<string, CommandEntry> = {
  serve: {
    summary: "serve models over the HTTP API",
    usage: `valar serve [--model [ID=]REF]... [--host ADDR] [--port N] [--db PATH] [--models-dir DIR] [--dry-run]

  --model [ID=]REF   model to serve (env VALAR_MODEL, comma-separated); repeat for several.
                     REF: a .gguf file, a Hugging Face directory, or hf:OWNER/REPO/FILE.
                     ID (the API's "model" name) defaults to the file name without extension.
                     Default: every model in the models directory, else the default chat model.
  --host ADDR        listen address (env VALAR_HOST, default 127.0.0.1); a non-loopback address
                     needs VALAR_API_KEY
  --port N           TCP port (env VALAR_PORT, default 8080)
  --db PATH          SQLite database (env VALAR_DB, default ./data/valar.db)
  --models-dir DIR   where models are found and pulled to (env VALAR_MODELS_DIR, default models)
  --dry-run          resolve, download and check the models, report them, and exit
  env VALAR_API_KEY  Bearer key clients must send

${settingsHelp(["model", "host", "port", "db", "modelsDir", "apiKey"])}`,
    load: () => import("./cli/serve.ts"),
  },
  generate: {
    summary: "generate text from a prompt with the engine (no server)",
    usage: `valar generate --model REF --prompt TEXT [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [--max-context N] [--json]

  --model, -m REF    a .gguf file, a Hugging Face directory, or hf:OWNER/REPO/FILE
  --prompt, -p TEXT  fed verbatim after BOS (no chat template)
  --max-tokens N     tokens to generate (default 128)
  --temperature T    0 is greedy (default 0.8)
  --top-p P          nucleus sampling mass in [0, 1] (default 0.95; 0 is greedy)
  --seed S           sampler seed (default random)
  --max-context N    context to allocate (default the model's own)
  --json             one JSON object: prompt ids, generated ids, text, timings`,
    load: () => import("./cli/generate.ts"),
  },
  info: {
    summary: "describe a model file: architecture, sizes, tokenizer, chat template, tensors",
    usage: "valar info REF",
    load: () => import("./cli/info.ts"),
  },
  tokenize: {
    summary: "print the token ids of a text",
    usage: `valar tokenize REF TEXT [--verbose] [--no-bos] [--special]

  --verbose, -v   one line per token: id, decoded piece, stored token text
  --no-bos        do not prepend BOS
  --special       match control tokens written in TEXT (e.g. <|im_start|>) as single ids`,
    load: () => import("./cli/tokenize.ts"),
  },
  detokenize: {
    summary: "print the text of token ids",
    usage: `valar detokenize REF IDS [--special]

  IDS         ids separated by commas or spaces ("1, 15043 3186"), in one or several arguments
  --special   also print control tokens (BOS, EOS, ...)`,
    load: () => import("./cli/detokenize.ts"),
  },
  pull: {
    summary: "download a model file from the Hugging Face hub",
    usage: `valar pull hf:OWNER/REPO/FILE [--dir DIR]

  --dir DIR   destination (env VALAR_MODELS_DIR, default models)
  env VALAR_HF_ENDPOINT  hub base URL (default https://huggingface.co)
  env HF_TOKEN           token for private or gated repositories`,
    load: () => import("./cli/pull.ts"),
  },
  convert: {
    summary: "convert a Hugging Face safetensors directory to a GGUF file",
    usage: `valar convert DIR OUT.gguf [--force] [--name NAME]

  --force, -f   replace OUT.gguf if it exists
  --name NAME   general.name to record (default: the source's)`,
    load: () => import("./cli/convert.ts"),
  },
  "build-web": {
    summary: "write the demo page and the in-page engine as static files",
    usage: `valar build-web OUT

  OUT   directory to write index.html, demo.js, demo.css, valar-browser.js and
        valar-engine-worker.js into (created if missing). Serve it over HTTPS or localhost
        (WebGPU and Cache Storage need a secure context); the page's "From the server" list
        reads ../v1/models, so put OUT at /demo/ beside a Valar server, or load a local .gguf.`,
    load: () => import("./cli/build-web.ts"),
  },
  keys: {
    summary: "manage API keys (create, list, revoke)",
    usage: `valar keys create --org NAME [--name LABEL] [--db PATH]
valar keys list [--db PATH]
valar keys revoke KEY_ID [--db PATH]`,
    load: () => import("./cli/keys.ts"),
  },
  batch: {
    summary: "run a JSONL file of Responses requests as a batch on a running server",
    usage: `valar batch submit FILE.jsonl [--label L] [--webhook URL] [--url URL]
valar batch wait ID [--interval-ms N] [--url URL]
valar batch results ID [-o FILE] [--url URL]
valar batch list [--limit N] [--url URL]
valar batch cancel ID [--url URL]

  submit           send FILE as one batch and print its id (only the id, on stdout). Each
                   non-empty line is {"custom_id", "params"} or OpenAI's batch-file line
                   {"custom_id", "method": "POST", "url": "/v1/responses", "body"}. The
                   Idempotency-Key is the file's and label's SHA-256: re-running replays.
    --label L      the batch's label (letters, digits, '-', '_')
    --webhook URL  metadata.completion_webhook: POSTed the batch when it finishes
  wait             poll until the batch is completed (exit 0) or cancelled (exit 1), with
                   progress on stderr
    --interval-ms N  between polls (default 1000)
  results          the finished items as JSON Lines {custom_id, response}, streamed
    -o, --output FILE  write them to FILE instead of stdout
  list             recent batches, newest first: id, status, done/total, label, created
    --limit N      how many (server default 25, at most 200)
  cancel           stop the batch's queued items; print its status and counts
  --url URL        the server (env VALAR_URL, default http://127.0.0.1:8080)
  env VALAR_API_KEY  sent as "Authorization: Bearer KEY" when set`,
    load: () => import("./cli/batch.ts"),
  },
};

// Errors that describe a bad input rather than a bug: their message is the whole story.
const INPUT_ERRORS = new Set(["ModelFileError", "ModelRefError", "PullError", "HfRefError", "TokenizerError", "ChatTemplateError", "StartError"]);

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: valar COMMAND [ARGS]   (bun run src/cli.ts COMMAND ...)\n\ncommands:\n${rows.join("\n")}\n\n` +
    "`valar COMMAND --help` shows a command's arguments.";
}

/** Runs the CLI and returns the exit code (0 ok, 1 failure, 2 bad usage). */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    const topic = name === "help" ? rest[0] : undefined;
    if (topic && COMMANDS[topic]) console.log(`usage: ${COMMANDS[topic].usage}`);
    else console.log(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`valar: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  const options = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (options.includes("--help") || options.includes("-h")) {
    console.log(`usage: ${command.usage}`);
    return 0;
  }
  try {
    return await (await command.load()).run(rest);
  } catch (err) {
    const e = err as Error;
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`valar ${name}: ${e.message}\nusage: ${command.usage.split("\n")[0]}\n(\`valar ${name} --help\` for details)`);
      return 2;
    }
    if (INPUT_ERRORS.has(e?.name)) {
      console.error(`valar ${name}: ${e.message}`);
      return 1;
    }
    console.error(`valar ${name}: unexpected error:`, err);
    return 1;
  }
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
