# WonderTix — see README.md. Every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install run migrate seed test lint unit integration deploy-tests hosts-tests e2e bench clean

$(BIN)/.installed: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

migrate: install
	$(BIN)/wondertix migrate --noinput

seed: migrate
	$(BIN)/wondertix seed_demo

run: seed
	@echo "WonderTix demo storefront: http://127.0.0.1:8000  (staff: http://127.0.0.1:8000/staff/)"
	$(BIN)/wondertix runserver 127.0.0.1:8000

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -q tests/unit -n 2

integration: install
	$(BIN)/pytest -q --durations=8 tests/integration

deploy-tests: install
	$(BIN)/pytest -q --durations=12 tests/deploy

# prd, bak and the front door as network namespaces (root: ip netns); with prd's HA database
# on them, prd's host killed and cut off mid on-sale rush (test_ha_netns.py, ~5 minutes).
hosts-tests: install
	$(BIN)/pytest -q --durations=8 tests/hosts

e2e: install
	$(BIN)/pytest -q tests/e2e

# Every layer, from specific to general. CI runs exactly this. lint and unit first (a failure
# there stops everything); then two lanes side by side, each layer's output in
# var/test-logs/ and printed whole at the end (tests/lanes.py): the deploy tests' stack holds the
# spec's own ports; integration (HA stacks on the spec's ports moved: tests/support/moved_spec.py),
# the hosts (network namespaces of their own) and the browser journeys need none of them.
test: lint unit
	$(BIN)/python tests/lanes.py deploy-tests integration,hosts-tests,e2e

bench: install
	$(BIN)/python bench/onsale.py

clean:
	rm -rf var/static .pytest_cache .mypy_cache .ruff_cache
