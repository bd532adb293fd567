# Lockbox's developer and CI entry points. "make" alone lists the targets.
#
# Every check here either runs or fails: no target skips a check it can't run
# and passes anyway.

SHELL := /bin/sh
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

# Unsets the LOCKBOX_* server settings (keeping LOCKBOX_TEST_*) in the shell
# running a recipe, so a developer's environment can't change test results.
# The rest of that recipe line must follow it after "; \".
SCRUB_ENV = for v in $$(env | sed -n 's/^\(LOCKBOX_[A-Za-z0-9_]*\)=.*/\1/p'); do \
		case "$$v" in LOCKBOX_TEST_*) ;; *) unset "$$v" ;; esac; \
	done

# How long "make test" runs each fuzz target beyond its seeds: a short
# regression pass; run longer by hand (make test FUZZTIME=5m).
FUZZTIME ?= 10s

.PHONY: help run build test bench lint fmt

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-6s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## Start "lockbox dev": embedded store, demo tenant, printed tokens
	go run ./cmd/lockbox dev

build: ## Build static binaries of ./cmd/... into bin/
	CGO_ENABLED=0 go build -trimpath -o bin/ ./cmd/...

test: ## go vet, all tests with -race against a real redis-server, the Rego tests, short fuzzing
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	echo "go vet ./..."; \
	go vet ./...; \
	echo "go test -race -count=1 ./..."; \
	go test -race -count=1 ./...; \
	echo "go run ./cmd/lockbox policy test rego/"; \
	go run ./cmd/lockbox policy test rego/; \
	echo "(cd tools && go tool opa check --strict ../rego && go tool opa test ../rego)"; \
	(cd tools && go tool opa check --strict ../rego && go tool opa test ../rego); \
	for f in "FuzzCanonicalize ./proxy" "FuzzInputBuilder ./proxy" "FuzzInputBuilder ./policy" "FuzzVerify ./identity"; do \
		set -- $$f; \
		echo "go test -run '^$$' -fuzz '^$$1$$' -fuzztime $(FUZZTIME) $$2"; \
		go test -run '^$$' -fuzz "^$$1$$" -fuzztime $(FUZZTIME) "$$2"; \
	done

bench: ## Benchmarks only (no tests), with allocations
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	echo "go test -run '^$$' -bench . -benchmem ./..."; \
	go test -run '^$$' -bench . -benchmem ./...

lint: ## Fail if any file needs gofmt, then go vet
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run: make fmt):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi
	go vet ./...

fmt: ## gofmt every Go file
	gofmt -w .
