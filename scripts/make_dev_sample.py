"""Regenerate the committed dev stack (fake data) under credentials/dev/.

Every value is freshly random; the files are encrypted with the real sops binary to the
recipients of the dev creation rule in .sops.yaml (the TEST-ONLY key). Run from the repository
root, with the names of the files to (re)write, or none for all of them:

    .venv/bin/python scripts/make_dev_sample.py                # every file
    .venv/bin/python scripts/make_dev_sample.py ios-classic    # only that client file

Rewriting a file changes every key and secret in it, so write only the files you need.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from keyops.store import sample
from keyops.store.sops import Sops


def main(argv: list[str]) -> int:
    root = Path.cwd()
    if not (root / ".sops.yaml").is_file():
        print("error: run from the repository root (no .sops.yaml here).", file=sys.stderr)
        return 2
    documents = {**sample.dev_stack(dt.date(2026, 11, 27)), **sample.demo_clients()}
    unknown = sorted(set(argv) - set(documents))
    if unknown:
        print(
            f"error: no sample file named {', '.join(unknown)}. Known: {', '.join(documents)}.",
            file=sys.stderr,
        )
        return 2
    sops = Sops(root)
    target = root / "credentials" / "dev"
    target.mkdir(parents=True, exist_ok=True)
    for name in argv or list(documents):
        document = documents[name]
        hint = sample.STACK_SCHEMA_HINT if name == "_stack" else sample.CREDENTIAL_SCHEMA_HINT
        rel = f"credentials/dev/{name}.yaml"
        encrypted = sops.encrypt(sample.dump_yaml(document, hint), rel)
        (root / rel).write_bytes(encrypted)
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
