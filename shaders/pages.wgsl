// The paged KV cache (src/engine/kv-cache.ts): a layer's K and V are pools of pages of PAGE
// positions; a sequence's position p lives in row PT[slot][p / PAGE] * PAGE + p % PAGE. The
// including kernel declares the page table `PT` (PAGES_PER_SEQ entries per slot).

const PAGE: u32 = {{PAGE_SIZE}}u;
const PAGES_PER_SEQ: u32 = {{PAGES_PER_SEQ}}u;

/** The cache row holding position `pos` of the sequence in `slot`. */
fn kv_row(slot: u32, pos: u32) -> u32 {
  return PT[slot * PAGES_PER_SEQ + pos / PAGE] * PAGE + pos % PAGE;
}
