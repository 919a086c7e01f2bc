// npm test: compile src/ and test/ with tsc into build/, then run every build/test/*.test.js
// with Node's own test runner. No network, no real waiting: time and randomness are injected.
import { spawnSync } from "node:child_process";
import { readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function run(args) {
  const proc = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
  if (proc.status !== 0) process.exit(proc.status ?? 1);
}

rmSync(join(root, "build"), { recursive: true, force: true });
run([join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.test.json"]);
const dir = join(root, "build/test");
const files = readdirSync(dir)
  .filter((name) => name.endsWith(".test.js"))
  .sort()
  .map((name) => join(dir, name));
run(["--test", "--test-concurrency=1", ...process.argv.slice(2), ...files]);
