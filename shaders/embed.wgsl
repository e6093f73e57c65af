// Embedding lookup: X[t, :] = dequant(E[id of token t, :]) for the rows of E held in this binding
// (a table split across bindings is looked up once per part). A token's id is in the step
// (step.wgsl), or, for a decode token whose previous token was sampled on the GPU and not read
// back yet, in FED[slot]. One thread per 32-element chunk.

struct Params {
  K: u32,          // embedding length
  row_bytes: u32,
  row0: u32,       // first row of the table in this part
  rows: u32,       // rows in this part
  x_stride: u32,
  scale: f32,      // gemma's sqrt(n_embd), granite's embedding_scale; 1: none
}

@group(0) @binding(1) var<storage, read> S: Step;
@group(0) @binding(2) var<storage, read> FED: array<u32>;
@group(0) @binding(3) var<storage, read_write> X: array<f32>;
@group(0) @binding(4) var<uniform> P: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let t = gid.y;
  let nch = (P.K + 31u) / 32u;
  let tok = S.tokens[t];
  let id = select(tok.id, FED[tok.slot], (tok.fed & 1u) == 1u);
  if (c >= nch || id < P.row0 || id >= P.row0 + P.rows) { return; }
  let v = load_chunk(row_base(id - P.row0, P.row_bytes), c, P.K);
  let n = min(32u, P.K - c * 32u);
  for (var i = 0u; i < n; i++) { X[t * P.x_stride + c * 32u + i] = v[i] * P.scale; }
}
