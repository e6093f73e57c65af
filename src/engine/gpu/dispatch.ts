// Dispatch geometry: WebGPU caps each grid dimension at 65535 workgroups, so long row ranges
// (a 150k-token vocabulary) fold over x and y.

export const MAX_GROUPS = 65535;

/** [x, y] covering `groups` workgroups; kernels flatten them back as y * x_count + x. */
export function foldGroups(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}
