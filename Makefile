# keyops: two commands for a new user.
#   make demo   set up .venv, then show the whole workflow on the embedded dev stack
#   make test   set up .venv, then run the whole test suite
#   make e2e    only the end-to-end tests against real peers (soketi, pusher-js, the JS client)
# and one to keep using it:
#   make shell  a shell with keyops and sops on PATH and the dev stack's TEST-ONLY key
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.keyops-installed
STACK  ?= dev
# The dev stack's committed TEST-ONLY identity; the demo and tests use it, nothing else should.
DEV_KEY := $(CURDIR)/keys/dev-TEST-ONLY.agekey
# The workflows `keyops init` writes into a credentials repository (linted like .github/).
TEMPLATE_WORKFLOWS := $(wildcard src/keyops/templates/init/dot-github/workflows/*.yml)

.PHONY: install node-deps demo web-demo shell test test-fast e2e lint typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	@SOPS_AGE_KEY_FILE=$(DEV_KEY) PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# The @keyops/client example page next to keyops serve (dev stack): open the URL it prints.
web-demo: $(STAMP)
	@command -v npm >/dev/null 2>&1 || { echo "error: npm is not installed. Install Node.js 20+ with npm, then run make web-demo again." >&2; exit 2; }
	cd clients/js && { test -d node_modules || npm ci --no-audit --no-fund; } && npm run build
	@SOPS_AGE_KEY_FILE=$(DEV_KEY) $(BIN)/python scripts/web_demo.py $(WEB_DEMO_ARGS)

# The Node packages of the JS client and the end-to-end peers (soketi, pusher-js), with npm ci
# from their committed lockfiles, only when node_modules is missing or stale. Without Node.js
# the suite still runs, and the tests that need it fail naming the install command.
node-deps: $(STAMP)
	-$(BIN)/python tests/support/npm.py clients/js tests/e2e/pusher tests/e2e/browser

# A new interactive shell in which `keyops` and `sops` are on PATH and the dev stack decrypts
# (an age key already in SOPS_AGE_KEY_FILE is kept); exit it to leave. Without make:
#   . .venv/bin/activate && export SOPS_AGE_KEY_FILE=$PWD/keys/dev-TEST-ONLY.agekey
shell: $(STAMP)
	@echo "keyops and sops are on PATH; SOPS_AGE_KEY_FILE=$${SOPS_AGE_KEY_FILE:-$(DEV_KEY)}. Type exit to leave."
	@VIRTUAL_ENV="$(CURDIR)/$(VENV)" PATH="$(CURDIR)/$(BIN):$$PATH" SOPS_AGE_KEY_FILE="$${SOPS_AGE_KEY_FILE:-$(DEV_KEY)}" $${SHELL:-/bin/sh} -i

test: $(STAMP) node-deps
	$(BIN)/python -m pytest -n auto -p no:cacheprovider $(PYTEST_ARGS)

# Everything but the kill loops and load tests (marked slow); `make test` runs them all.
test-fast: $(STAMP) node-deps
	$(BIN)/python -m pytest -n auto -p no:cacheprovider -m "not slow" $(PYTEST_ARGS)

# Only the end-to-end tests against real peers (soketi, pusher-js, the JS client's build).
e2e: $(STAMP)
	$(BIN)/python tests/support/npm.py clients/js tests/e2e/pusher tests/e2e/browser
	$(BIN)/python -m pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts infra policies examples
	$(BIN)/ruff format --check src tests bench scripts infra policies examples
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml $(TEMPLATE_WORKFLOWS)
	$(BIN)/zizmor --offline --min-severity medium .github/ $(TEMPLATE_WORKFLOWS)

typecheck: $(STAMP)
	$(BIN)/mypy

# Every benchmark, or one with BENCH=serve|asset|check. bench_serve needs wrk (apt-get install -y wrk).
bench: $(STAMP)
	@SOPS_AGE_KEY_FILE=$(DEV_KEY) $(BIN)/python bench/run.py $(if $(BENCH),--only $(BENCH)) $(BENCH_ARGS)

# Deployment (docs/deploy.md): the Pulumi CLI with the CrossGuard pack, one stack at a time.
#   make preview STACK=prod      plan, with every policy evaluated
#   make deploy STACK=prod       apply (add PULUMI_ARGS=--yes in CI)
PULUMI ?= pulumi
.PHONY: preview deploy pulumi-cli

pulumi-cli:
	@command -v $(PULUMI) >/dev/null 2>&1 || { \
	  echo "error: the pulumi CLI ($(PULUMI)) is not installed. Install it with 'curl -fsSL https://get.pulumi.com | sh' (or 'brew install pulumi'), log in to your state backend ('pulumi login s3://BUCKET' or 'pulumi login'), then run make $(MAKECMDGOALS) STACK=$(STACK) again. See docs/deploy.md." >&2; \
	  exit 2; }

# dev decrypts with the committed TEST-ONLY key unless SOPS_AGE_KEY_FILE says otherwise.
PULUMI_ENV = PATH="$(CURDIR)/$(BIN):$$PATH" $(if $(filter dev,$(STACK)),SOPS_AGE_KEY_FILE="$${SOPS_AGE_KEY_FILE:-$(DEV_KEY)}")

preview: pulumi-cli $(STAMP)
	$(PULUMI_ENV) $(PULUMI) preview --stack $(STACK) --policy-pack policies/infra --diff $(PULUMI_ARGS)

deploy: pulumi-cli $(STAMP)
	$(PULUMI_ENV) $(PULUMI) up --stack $(STACK) --policy-pack policies/infra $(PULUMI_ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
