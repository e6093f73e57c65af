// What one forward step runs, written by the host before each step (src/engine/step.ts writes
// the same layout): the step's tokens, each with its position in its own sequence and its
// sequence's slot (its page-table row and its fed-token cell), and the rows it samples, one per
// sequence that picks a token this step, each with that sequence's own sampling settings. Kernels
// of the body run over `n_tokens` tokens, the output head and the sampler over `n_rows` rows.

struct StepToken {
  id: u32,    // the token, unless `fed`
  pos: u32,   // its position in its sequence
  slot: u32,  // its sequence's slot
  fed: u32,   // bit 0: the token is FED[slot], the one this sequence's previous step sampled on
              // the GPU; bit 1: a row llama.cpp's batch takes in fours (step.ts `inFour`)
}

struct SampleRow {
  token: u32,        // the step's token whose logits this row samples from
  slot: u32,         // its sequence's slot (where the sampled id is fed from)
  temperature: f32,  // 0: greedy
  top_p: f32,
  draw: f32,         // a uniform draw in [0, 1) from the sequence's own seeded stream
  want_logprob: u32,
  masked: u32,       // 1: the grammar's mask for this row was uploaded (mask_logits.wgsl)
  top_k: u32,        // most likely tokens to report (top_logprobs.wgsl); 0: none
}

struct Step {
  n_tokens: u32,
  n_rows: u32,
  _pad0: u32,
  _pad1: u32,
  tokens: array<StepToken, {{MAX_STEP_TOKENS}}>,
  rows: array<SampleRow, {{MAX_STEP_ROWS}}>,
}
