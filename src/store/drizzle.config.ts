// drizzle-kit: `bunx drizzle-kit generate --config src/store/drizzle.config.ts` (from the repo root) writes a new migration from src/store/schema.ts.
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "sqlite",
  schema: "./src/store/schema.ts",
  out: "./src/store/migrations",
});
