// Some story text for prompts of benchmarks (bench/engine.ts cuts it to 128 tokens, bench/throughput.ts to 192).
export const STORY_TEXT =
  "Once upon a time, in a small village by the sea, there lived a little girl named Lily. " +
  "Every morning she walked to the beach with her dog, Max, to look for shells. One day she found " +
  "a big shiny shell that sang when she held it to her ear. Lily ran home to show her mom, but on " +
  "the way she met an old man who was sad because he had lost his boat. Lily wanted to help him, " +
  "so she gave him the singing shell and said, \"Listen, it will tell you where your boat is.\" " +
  "The old man smiled and listened. The shell sang a song about the rocks near the lighthouse, " +
  "and they went there together. Behind the rocks they saw the little red boat, safe and sound.";
