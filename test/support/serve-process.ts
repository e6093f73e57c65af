// A server in its own process, for tests that kill it (test/crash.test.ts): serves one model on
// the database named by argv, prints `{"url": ...}` on stdout once listening, and stops cleanly
// on SIGTERM. Usage: bun test/support/serve-process.ts DB_PATH MODEL_ID MODEL_PATH [MAX_RUNNING]
import { startServer } from "../../src/server.ts";

const [db, id, ref, maxRunning] = process.argv.slice(2);
if (!db || !id || !ref) {
  console.error("usage: serve-process.ts DB_PATH MODEL_ID MODEL_PATH [MAX_RUNNING]");
  process.exit(2);
}
const batching = maxRunning ? { maxRunning: Number(maxRunning) } : undefined;
const server = await startServer({ models: [{ id, ref }], host: "127.0.0.1", port: 0, db, batching });
console.log(JSON.stringify({ url: server.url, pid: process.pid }));
process.once("SIGTERM", async () => {
  await server.stop();
  process.exit(0);
});
