// npm run build: dist/ (ESM + .d.ts, one module per source file), the size budget, and a
// browser bundle with jose inside (dist/browser/keyops-client.js) for a plain
// <script type="module"> page. The build may use Node built-ins; the library may not.
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Minified + gzipped size of the library itself, jose excluded. */
export const BUDGET_BYTES = 15 * 1024;

function run(args) {
  const proc = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
  if (proc.status !== 0) process.exit(proc.status ?? 1);
}

async function bundle(options) {
  const out = await build({
    entryPoints: [join(root, "src/index.ts")],
    bundle: true,
    format: "esm",
    minify: true,
    target: "es2020",
    write: false,
    logLevel: "error",
    ...options,
  });
  return out.outputFiles[0].contents;
}

const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;

rmSync(join(root, "dist"), { recursive: true, force: true });
run([join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"]);

const library = await bundle({ platform: "neutral", external: ["jose"] });
const size = gz(library);
console.log(
  `@keyops/client: ${library.length} bytes minified, ${size} bytes minified+gzipped ` +
    `(jose excluded; budget ${BUDGET_BYTES})`,
);

const browser = await bundle({ platform: "browser" });
mkdirSync(join(root, "dist/browser"), { recursive: true });
writeFileSync(join(root, "dist/browser/keyops-client.js"), browser);
console.log(
  `dist/browser/keyops-client.js: ${browser.length} bytes minified, ${gz(browser)} bytes ` +
    "minified+gzipped (jose included)",
);

if (size > BUDGET_BYTES) {
  console.error(`error: the library is ${size} bytes min+gz, over the ${BUDGET_BYTES}-byte budget`);
  process.exit(1);
}
