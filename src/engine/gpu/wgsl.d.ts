// WGSL sources are imported as text (`with { type: "text" }`), which Bun, Deno and bundlers support.
declare module "*.wgsl" {
  const source: string;
  export default source;
}
