// repr() against what Python's repr() prints for the same strings (computed with CPython 3.11),
// so both clients show a value in a message the same way.
import assert from "node:assert/strict";
import { test } from "node:test";

import { repr } from "../src/repr.js";

const PYTHON: [string, string][] = [
  ["5.2.0\n", "'5.2.0\\n'"],
  ["it's", "\"it's\""],
  ["say \"hi\" it's", "'say \"hi\" it\\'s'"],
  ["tab\there", "'tab\\there'"],
  ["\u0000\u001f\u007f", "'\\x00\\x1f\\x7f'"],
  ["caf\u00e9", "'caf\u00e9'"],
  ["\u00a0nbsp", "'\\xa0nbsp'"],
  ["\u2028", "'\\u2028'"],
  ["\ud800", "'\\ud800'"],
  ["\ud83d\ude00", "'\ud83d\ude00'"],
  ["\udb40\udc01", "'\\U000e0001'"],
  ["back\\slash", "'back\\\\slash'"],
  ["\u0665", "'\u0665'"],
];

for (const [input, expected] of PYTHON) {
  test(`repr(${JSON.stringify(input)}) is Python's`, () => {
    assert.equal(repr(input), expected);
  });
}
