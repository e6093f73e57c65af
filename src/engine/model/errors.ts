// One error type for every problem with a model file or directory, so callers (CLI, server
// start-up, tests) can tell "this file is bad" apart from bugs and report it as such.

export class ModelFileError extends Error {
  /** The file or directory the problem is in. */
  readonly file: string;

  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "ModelFileError";
    this.file = file;
  }
}
