// `hf:OWNER/REPO/FILE` references and the hub URLs they map to.

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

export interface HfRef {
  owner: string;
  repo: string;
  /** Path of the file inside the repository (may contain folders). */
  file: string;
  revision: string;
}

export class HfRefError extends Error {
  override name = "HfRefError";
}

export function isHfRef(ref: string): boolean {
  return ref.startsWith("hf:");
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._\-]*$/;

/** Parses `hf:OWNER/REPO/FILE`; the error says which part is missing or malformed. */
export function parseHfRef(ref: string): HfRef {
  if (!isHfRef(ref)) throw new HfRefError(`"${ref}" is not a hub reference (expected hf:OWNER/REPO/FILE)`);
  const parts = ref.slice(3).split("/");
  if (parts.length < 3 || parts.some((p) => p === "")) {
    throw new HfRefError(`"${ref}": expected hf:OWNER/REPO/FILE, e.g. hf:bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q8_0.gguf`);
  }
  const [owner, repo, ...fileParts] = parts;
  for (const [what, value] of [["owner", owner], ["repository", repo]] as const) {
    if (!SEGMENT.test(value)) throw new HfRefError(`"${ref}": invalid ${what} name "${value}"`);
  }
  if (fileParts.some((p) => p === "." || p === "..")) throw new HfRefError(`"${ref}": file path may not contain . or ..`);
  return { owner, repo, file: fileParts.join("/"), revision: "main" };
}

/** The hub's download URL of a file: `ENDPOINT/OWNER/REPO/resolve/REVISION/FILE`. */
export function resolveUrl(ref: HfRef, endpoint: string = DEFAULT_HF_ENDPOINT): string {
  const file = ref.file.split("/").map(encodeURIComponent).join("/");
  return `${endpoint.replace(/\/+$/, "")}/${ref.owner}/${ref.repo}/resolve/${encodeURIComponent(ref.revision)}/${file}`;
}

/** Name of the downloaded file inside the models directory (the file's own name). */
export function localFileName(ref: HfRef): string {
  return ref.file.split("/").pop()!;
}
