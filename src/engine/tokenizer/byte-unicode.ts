// GPT-2's reversible byte <-> printable code point table: byte-level BPE vocabularies spell every
// byte as one visible character (space is Ġ, newline Ċ), so merges never see raw control bytes.

export const BYTE_TO_CHAR: string[] = [];
export const CHAR_TO_BYTE = new Map<string, number>();

{
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const ch = String.fromCodePoint(printable(b) ? b : 256 + shifted++);
    BYTE_TO_CHAR[b] = ch;
    CHAR_TO_BYTE.set(ch, b);
  }
}
