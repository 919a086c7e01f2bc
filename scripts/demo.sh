#!/usr/bin/env bash
# The demo behind `make demo`: keyops on the embedded dev stack, decrypted with the committed
# TEST-ONLY age identity (keys/dev-TEST-ONLY.agekey). It changes no committed file.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. validate: encryption, recipients and schema of every credential file (no key needed)"
run keyops validate --no-decrypt --stack dev

step "2. validate: decrypt each file in memory with the test key and check the schema"
run keyops validate --stack dev

step "3. status: state, age, serving share and next step of each credential"
run keyops status --stack dev

printf '\ndemo finished: the dev stack is valid.\n'
