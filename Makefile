# electric — `make help` lists the targets.

GO ?= go
BIN := bin/electric
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

# `make image` and `make release` (tools/release, internal/release): outputs in
# dist/. Every timestamp in the image is SOURCE_DATE_EPOCH, the commit's time by
# default, so one commit and toolchain give one image, byte for byte.
DIST := dist
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

# Tests: whole repository, race detector, no cache. Raise the timeout on slow machines.
TEST_TIMEOUT ?= 15m
TEST_PKGS ?= ./...

# `make nemesis`: the fault-injection run of internal/nemesis, long version
# (make test runs a short one: one fault of each kind). NEMESIS_ROUNDS faults
# (half of them engine kills), drawn from NEMESIS_SEED (a failing run prints
# its seed: rerun with it); NEMESIS_STEP of writes between faults, each held
# NEMESIS_HOLD. Needs root (a tmpfs for the full-disk fault), Postgres and the
# 0.4.3 client (npm ci in internal/satinterop).
NEMESIS_ROUNDS ?= 40
NEMESIS_SEED ?= 1
NEMESIS_STEP ?= 2s
NEMESIS_HOLD ?= 2s

# Benchmarks: one pass each by default (they print their figures and ratios);
# e.g. make bench BENCH_PKGS=./engine/txlog/pebblelog BENCH=Append BENCHTIME=5s
# engine's BenchmarkReplication replicates 1M rows natively and through the
# engine (BENCH_ROWS=100000 to shorten it) and takes minutes: hence the long
# timeout.
BENCH ?= .
BENCHTIME ?= 1x
BENCH_PKGS ?= ./...

# Fuzzing: each target of FUZZ_TARGETS (package:FuzzName) for FUZZTIME, one
# after the other (go test -fuzz takes one target per run), then a summary.
# make test runs every seed corpus once; this explores beyond them. A crash
# is saved under the package's testdata/fuzz/<FuzzName>/; FUZZ_FLAGS=-parallel=1
# on a busy machine.
FUZZTIME ?= 60s
FUZZ_FLAGS ?=
FUZZ_TARGETS ?= \
	./engine/satellite:FuzzDecodeFrame \
	./engine/satellite:FuzzSessionInbound \
	./engine/pgsource:FuzzDecodePgoutput \
	./engine/publisher:FuzzSubscriberSession \
	./engine/publisher:FuzzParseStart \
	./migrations:FuzzMigrationsAPI \
	./engine/auth:FuzzValidate

# `make shell` runs the engine in the foreground against the dev Postgres
# started by `make start_dev_env`. Set in the environment or on the command line
# to override (they are the engine's own variables, see README).
CONNECTORS ?= db_a=postgresql://electric:password@127.0.0.1:54321/electric;db_b=postgresql://electric:password@127.0.0.1:54322/electric
ELECTRIC_HOST ?= 127.0.0.1
OFFSET_STORAGE_FILE ?= .electric/offset_storage_data.dev.dat

.PHONY: help build test dev lint bench fuzz clean proto image release \
	nemesis deps compile tests start_dev_env stop_dev_env shell apply_migration example

help: ## list the targets
	@grep -E '^[a-z_]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z_]+):.*## /  \1\t/' | expand -t 18

build: ## build bin/electric
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/electric

test: ## run every test with the race detector (needs Postgres server binaries: initdb, pg_ctl)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TEST_PKGS)

nemesis: ## fault-injection run: NEMESIS_ROUNDS (40) faults, engine kills, Postgres crashes, cuts, full disk
	NEMESIS_ROUNDS=$(NEMESIS_ROUNDS) NEMESIS_SEED=$(NEMESIS_SEED) NEMESIS_STEP=$(NEMESIS_STEP) NEMESIS_HOLD=$(NEMESIS_HOLD) \
	$(GO) test -race -count=1 -v -timeout 90m -run '^TestNemesis$$' ./internal/nemesis/

dev: build ## start two local Postgres (db_a :54321, db_b :54322) and the engine
	./$(BIN) dev up

lint: ## gofmt check and go vet
	@out="$$(find . -name '*.go' -not -path './.git/*' -not -path '*/node_modules/*' -not -path './.electric/*' | xargs gofmt -l)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: ## run the benchmarks once each (BENCH, BENCHTIME, BENCH_PKGS to narrow)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -timeout 60m $(BENCH_PKGS)

fuzz: ## run each fuzz target for FUZZTIME (default 60s) and print a summary
	@summary=""; failed=0; log=$$(mktemp); \
	for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $(FUZZ_FLAGS) $$pkg >$$log 2>&1; rc=$$?; \
		cat $$log; \
		execs=$$(grep -o 'execs: [0-9]*' $$log | tail -1); \
		if [ $$rc -eq 0 ]; then \
			summary="$$summary\n  ok    $$name ($$execs)"; \
		else \
			summary="$$summary\n  FAIL  $$name ($$execs; reproducer under $$pkg/testdata/fuzz/$$name/)"; failed=1; \
		fi; \
	done; \
	rm -f $$log; printf "fuzz summary ($(FUZZTIME) each):$$summary\n"; exit $$failed

image: ## build the container image without Docker: dist/electric-<version>.tar (docker/podman load)
	$(GO) run ./tools/release image -version '$(VERSION)' -commit '$(COMMIT)' \
		-arch '$(IMAGE_ARCH)' -epoch '$(SOURCE_DATE_EPOCH)' -out '$(DIST)/electric-$(VERSION).tar'

release: ## build static binaries for linux and darwin, amd64 and arm64, and SHA256SUMS in dist/
	$(GO) run ./tools/release release -version '$(VERSION)' -commit '$(COMMIT)' -out '$(DIST)'

clean: ## remove build outputs (the dev environment's state stays: electric dev reset)
	rm -rf bin $(DIST)

proto: ## regenerate engine/satellite/satpb (needs protoc and protoc-gen-go, see satpb/gen.go)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) generate ./engine/satellite/satpb

# The seed's target names, for people who know them.

deps: ## download the Go modules
	$(GO) mod download

compile: build ## = build

tests: test ## = test

start_dev_env: build ## start only the two dev Postgres (no engine)
	./$(BIN) dev up --no-engine

stop_dev_env: build ## stop everything the dev environment started
	./$(BIN) dev down

shell: build ## run the engine in the foreground against the dev Postgres (make start_dev_env first)
	@mkdir -p $(dir $(OFFSET_STORAGE_FILE))
	CONNECTORS='$(CONNECTORS)' ELECTRIC_HOST='$(ELECTRIC_HOST)' \
	OFFSET_STORAGE_FILE='$(OFFSET_STORAGE_FILE)' ./$(BIN) serve

# `make example`: the todo app of examples/todo against the dev engine. Its
# migration is copied into the dev engine's MIGRATIONS_DIR (./migrations, as
# `electric dev up` run here sets it), applied once, built into the client
# bundle the app imports, and published (the engine streams its schema).
EXAMPLE := examples/todo
EXAMPLE_MIGRATION := 1700000000_create_todos

example: build ## run the todo app of examples/todo against the dev engine (make dev first)
	@command -v node >/dev/null || { echo "make example needs Node 20 (node, npm)"; exit 2; }
	@test -d $(EXAMPLE)/node_modules || (cd $(EXAMPLE) && npm ci --no-audit --no-fund --loglevel=error)
	@mkdir -p migrations && cp -R $(EXAMPLE)/migrations/$(EXAMPLE_MIGRATION) migrations/
	@if ./$(BIN) migrate list | grep '^$(EXAMPLE_MIGRATION)' | grep -q pending; then ./$(BIN) migrate apply $(EXAMPLE_MIGRATION); fi
	./$(BIN) migrate build --out $(EXAMPLE)/dist/electric
	./$(BIN) migrate publish $(EXAMPLE_MIGRATION)
	cd $(EXAMPLE) && node todo.mjs add "try electric" && node todo.mjs list

apply_migration: build ## apply a migration through the running engine: make apply_migration name=1666288253_create_items
	@if [ -z "$(name)" ]; then echo "usage: make apply_migration name=<migration name>"; exit 2; fi
	./$(BIN) migrate apply '$(name)'
