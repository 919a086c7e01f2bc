// The library must run in browsers and React Native: no Node built-ins, no Node globals, no
// logging. (The build and test scripts may use Node; src/ may not.)
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

const SRC = join(process.cwd(), "src");

test("src/ imports only jose and itself, and uses no Node globals or console", () => {
  const files = readdirSync(SRC).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length >= 10);
  for (const file of files) {
    // The code without its comments (which may well show how an app imports pusher-js).
    const text = readFileSync(join(SRC, file), "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/^\s*\/\/.*$/gm, "");
    const imports = [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gm)].map((m) => m[1]!);
    assert.doesNotMatch(text, /\bimport\(/, `${file} imports dynamically`);
    for (const spec of imports) {
      assert.ok(spec === "jose" || spec.startsWith("./"), `${file} imports ${spec}`);
    }
    for (const banned of [/\bprocess\.\w/, /\bBuffer\.\w/, /\brequire\(/, /\bconsole\.\w/, /\b__dirname\b/]) {
      assert.doesNotMatch(text, banned, `${file} uses ${banned}`);
    }
  }
});

test("package.json: jose is the only runtime dependency, pusher-js an optional peer", () => {
  const pkg = JSON.parse(readFileSync(join(process.cwd(), "package.json"), "utf8"));
  assert.deepEqual(Object.keys(pkg.dependencies), ["jose"]);
  assert.match(pkg.dependencies.jose, /^\d+\.\d+\.\d+$/); // pinned
  assert.deepEqual(pkg.peerDependenciesMeta, { "pusher-js": { optional: true } });
  assert.equal(pkg.type, "module");
});
