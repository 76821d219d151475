# Brook: `make run` starts a broker on localhost:9092, `make test` runs every test.
# Both do their own set-up: a virtualenv in .venv and test tools in $(BROOK_CACHE).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export BROOK_CACHE ?= $(HOME)/.cache/brook

.PHONY: setup tools run test lint unit clean bench compat profile e2e helm-crds

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Non-Python test dependencies, cached in $(BROOK_CACHE): Kafka's Java client and tools,
# kcat, kafkajs; and the Kubernetes control plane (etcd, kube-apiserver, controllers,
# helm) built with `go build` — about 15-20 minutes the first time, then a no-op.
tools: setup
	bash tools/setup-test-tools.sh
	bash tools/controlplane/build.sh

run: setup
	$(BIN)/brook broker

lint: setup
	$(BIN)/ruff check .

unit: setup
	$(BIN)/pytest tests/unit

test: setup tools lint
	$(BIN)/pytest

# Brook next to Apache Kafka on this machine (see bench/README.md).
$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

bench: tools $(VENV)/.bench-installed
	$(BIN)/python -m bench $(BENCH_ARGS)

compat: tools
	$(BIN)/python -m bench.compat $(COMPAT_ARGS)

profile: tools $(VENV)/.bench-installed
	$(BIN)/python -m bench.profile $(PROFILE_ARGS)

# kind-based end-to-end run (needs Docker and kind; see e2e/).
e2e: setup
	bash e2e/run.sh

# Copy crds/ (the single source of truth) into the Helm chart.
helm-crds:
	bash helm/sync-crds.sh

clean:
	rm -rf $(VENV) brook-data .pytest_cache .hypothesis
