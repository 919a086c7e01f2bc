#!/usr/bin/env bash
# The demo behind `make demo`: the whole served loop on the embedded dev stack, decrypted with
# the committed TEST-ONLY age identity (keys/dev-TEST-ONLY.agekey). Committed files are never
# changed: the rotation happens in a scratch copy of the repository under a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_DIR=$(pwd)
PORT=${KEYOPS_DEMO_PORT:-8787}
# The fake dev data is dated around this day; lifecycle ages and rule dates are evaluated as of
# it so the demo tells the same story whenever it runs. Bundles are signed with the real time.
DEMO_NOW=2026-11-27

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyops-demo.XXXXXX")
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step "1. validate: encryption, recipients and strict YAML of every file (no key needed)"
run keyops validate --no-decrypt --stack dev

step "2. validate: decrypt each file in memory with the test key; JSON Schema and consistency"
run keyops validate --stack dev

step "3. check: the policy rules that need no history"
run keyops check --stack dev --now "$DEMO_NOW"

step "4. status: state, age, serving share and next step of each credential"
run keyops status --stack dev --now "$DEMO_NOW"

step "5. scratch copy of the repository for the rotation (committed files stay untouched)"
SCRATCH="$WORK/repo"
mkdir -p "$SCRATCH"
cp -R credentials policies .sops.yaml "$SCRATCH/"
git -C "$SCRATCH" init --quiet --initial-branch=main
git -C "$SCRATCH" -c user.name=keyops-demo -c user.email=demo@keyops.invalid add -A
git -C "$SCRATCH" -c user.name=keyops-demo -c user.email=demo@keyops.invalid commit --quiet -m "demo: start"
echo "scratch repository: $SCRATCH"

step "6. build: sign the dev stack's bundle (payload JWS per servable credential)"
run keyops -C "$SCRATCH" build --stack dev --out "$WORK/bundle"

step "7. serve the bundle on 127.0.0.1:$PORT (it reloads when the bundle changes)"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "error: port $PORT on 127.0.0.1 is in use. Stop what listens there, or set KEYOPS_DEMO_PORT." >&2
  exit 2
fi
printf '$ keyops serve --bundle %s --port %s &\n' "$WORK/bundle" "$PORT"
keyops serve --bundle "$WORK/bundle" --host 127.0.0.1 --port "$PORT" --poll 0.5 >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "error: keyops serve exited early:" >&2; cat "$WORK/serve.log" >&2; exit 2
  fi
  sleep 0.1
done
run python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/healthz').read().decode())"

step "8. fetch as the iOS app: bootstrap config, then a signed, encrypted answer"
run keyops -C "$SCRATCH" client-config --stack dev --client ios --out "$WORK/ios-config.json"
if [[ "$PORT" != 8787 ]]; then
  # The dev stack file lists 127.0.0.1:8787/8788; point the app at the demo's port instead.
  python3 - "$WORK/ios-config.json" "$PORT" <<'PY'
import json, sys
path, port = sys.argv[1], sys.argv[2]
config = json.load(open(path))
config["endpoints"] = [f"http://127.0.0.1:{port}"]
with open(path, "w") as out:
    json.dump(config, out)
PY
fi
run keyops fetch --config "$WORK/ios-config.json" --cache "$WORK/ios-cache.json" \
  --install-id demo-install-0001 --app-version 5.3.0

step "9. rotate: add a pending iOS key with a 100% rollout (key and secret read from stdin)"
# A fresh fake credential in Pusher's format; it travels through a pipe, never through argv.
python3 -c "import secrets; print(secrets.token_hex(10)); print(secrets.token_hex(10))" |
  run keyops -C "$SCRATCH" rotate --stack dev --client ios --rollout-percent 100 --now "$DEMO_NOW"
git -C "$SCRATCH" -c user.name=keyops-demo -c user.email=demo@keyops.invalid commit --quiet -am "rotate ios"
run keyops -C "$SCRATCH" status --stack dev --now "$DEMO_NOW"

step "10. rebuild the bundle; the running server picks it up without a restart"
run keyops -C "$SCRATCH" build --stack dev --out "$WORK/bundle"
sleep 1.5

step "11. fetch again as the iOS app: the new key is served"
run keyops fetch --config "$WORK/ios-config.json" --cache "$WORK/ios-cache.json" \
  --install-id demo-install-0001 --app-version 5.3.0 --refresh

step "12. stop the server"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
echo "server stopped"

printf '\ndemo finished: validate -> check -> build -> serve -> fetch -> rotate -> rebuild -> fetch.\n'
