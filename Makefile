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

# How long "make test" runs each fuzz target beyond its seeds: by default a
# short regression pass of a fixed number of inputs per target (FUZZ_TARGETS,
# about fifteen seconds each on two cores: each count follows its target's
# speed, from about 600 inputs a second to 5 000). A count, not a duration:
# Go 1.26's fuzzing coordinator can fail a run that found nothing when a
# duration's deadline races a busy worker (go.dev/issue/75804). Run longer
# by hand with either form for every target (make test FUZZTIME=5m, or
# FUZZTIME=1000000x).
FUZZTIME ?=

# How many inputs the fuzzer spends shrinking an input it keeps for new
# coverage (Go's default is 60 s each): on a large one it shrank for the
# whole minute, with no other input run meanwhile, and a target's short
# pass took minutes instead of seconds. A failing input is shrunk as far.
FUZZMINIMIZE ?= 500x

# Every fuzz target, its package and its default count of inputs.
FUZZ_TARGETS = \
	FuzzCanonicalize:./proxy:40000x \
	FuzzMayNameOverride:./proxy:30000x \
	FuzzJSONType:./proxy:40000x \
	FuzzRefuseJSONMethodOverride:./proxy:30000x \
	FuzzInputBuilder:./proxy:30000x \
	FuzzInputBuilder:./policy:15000x \
	FuzzVerify:./identity:100000x \
	FuzzAppendJSON:./audit/record:150000x \
	FuzzDecodeRecord:./audit/record:60000x \
	FuzzSplit:./audit/siemcheck:300000x \
	FuzzReadRouting:./audit/siemcheck:200000x \
	FuzzShapes:./internal/keys:100000x \
	FuzzDefang:./notify:10000x

# The Kubernetes version deploy-check renders the Helm chart for: the
# oldest with native sidecars (restartPolicy: Always init containers) on by
# default is 1.29.
KUBE_VERSION ?= 1.29.0

.PHONY: help run build test deploy-check bench loadbench capacity capacity-idle lint fmt

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Loads lockbox's modules first: without them in the module cache and no
# network, "go run" printed one "module lookup disabled" line an import and
# nothing that said why. Go's own lines still show; the last says what to do.
#
# Builds bin/lockbox (as "make build" does) and execs it, rather than "go
# run": go run dies of a SIGTERM without passing it on, so a SIGTERM to make
# (kill, an editor's stop button, a supervisor) left lockbox dev running,
# holding its ports and .lockbox-dev/. Exec'd, lockbox dev is make's own
# child: it gets the signal, stops, and make ends when it has.
run: ## Build bin/lockbox and start "lockbox dev": embedded store, demo tenant, token files in .lockbox-dev/
	@go list -deps ./cmd/lockbox >/dev/null || { \
		echo "make run: Go could not load lockbox's modules (above): the first run downloads them (and the Go toolchain go.mod names, if yours is older), so it needs network once; run \"go mod download\" where there is network, or set GOPROXY to a proxy you reach" >&2; \
		exit 1; \
	}
	$(STATIC) go build $(STATICFLAGS) -o bin/ ./cmd/lockbox
	exec bin/lockbox dev

build: ## Build static binaries of ./cmd/... into bin/
	$(STATIC) go build $(STATICFLAGS) -o bin/ ./cmd/...

# go test's -timeout bounds each package's test binary. Its default, ten
# minutes, was too close to what e2e takes on two cores when lockbox's own
# builds are not cached: 7m43s on a loaded machine, 2m16s once they were.
# e2e builds lockbox (its own build, and make run's), both static like the
# Dockerfile's (STATIC below), about two minutes of CPU from an empty cache
# unless vet compiled the packages first. Fifteen minutes is what the
# whole suite should take: a package still running then is stuck, and the
# stack dump says where. Set TESTTIMEOUT to change it.
TESTTIMEOUT ?= 15m

# The build flags of every non-race build "make test" makes: the shipped
# binaries' (make build, make run, the Dockerfile, the e2e tests' builds).
# go vet compiles every package it checks the imports of, so vetting with
# these same flags leaves those builds only their own main packages to
# compile and link: from an empty build cache, vet's default flags cost a
# second full compile of lockbox and its modules (about 170 s of CPU on two
# cores) that nothing else reused. The race detector's build is another
# compile either way.
STATIC = CGO_ENABLED=0
STATICFLAGS = -trimpath

# The fuzzing pass (scripts/fuzz.sh) runs beside the other checks, at the
# lowest CPU priority (nice 19): "go test -race ./..." leaves about a third
# of two cores idle while its tests wait (on Redis, browsers, timeouts),
# and the fuzzers use that instead of two more minutes of their own after
# it. The tests get the CPU whenever they want it. The fuzzers run in a
# process group of their own (setsid), stopped whole (SIGTERM: a background
# job starts with SIGINT ignored) when a check fails or make is
# interrupted; their output follows the other checks'.
test: ## go vet, all tests with -race against a real redis-server, the Rego tests, short fuzzing, deploy-check
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	./scripts/check-fuzz-targets.sh $(FUZZ_TARGETS); \
	fuzzlog="$$(mktemp)"; \
	echo "scripts/fuzz.sh: fuzzing at nice 19 beside the checks below; its output follows them"; \
	setsid nice -n 19 ./scripts/fuzz.sh "$(FUZZTIME)" "$(FUZZMINIMIZE)" $(FUZZ_TARGETS) >"$$fuzzlog" 2>&1 & fuzz=$$!; \
	trap 'if [ -n "$$fuzz" ]; then kill -TERM "-$$fuzz" 2>/dev/null || kill -TERM "$$fuzz" 2>/dev/null; sleep 1; kill -KILL "-$$fuzz" 2>/dev/null; fi; rm -f "$$fuzzlog"' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "$(STATIC) go vet $(STATICFLAGS) ./..."; \
	$(STATIC) go vet $(STATICFLAGS) ./...; \
	echo "go test -race -count=1 -timeout $(TESTTIMEOUT) ./..."; \
	go test -race -count=1 -timeout "$(TESTTIMEOUT)" ./...; \
	echo "$(STATIC) go run $(STATICFLAGS) ./cmd/lockbox policy test rego/"; \
	$(STATIC) go run $(STATICFLAGS) ./cmd/lockbox policy test rego/; \
	echo "(cd tools && go tool opa check --strict ../rego && go tool opa test ../rego)"; \
	(cd tools && go tool opa check --strict ../rego && go tool opa test ../rego); \
	status=0; wait "$$fuzz" || status=$$?; fuzz=; \
	cat "$$fuzzlog"; \
	if [ "$$status" -ne 0 ]; then echo "make test: fuzzing failed (its output is above)" >&2; exit "$$status"; fi
	@$(MAKE) --no-print-directory deploy-check

# Renders go to a temporary directory, removed on exit. kubecheck decodes
# every object strictly (an unknown field or kind fails) and holds pods to
# the "restricted" Pod Security Standard and the sidecar's invariants; its
# own tests prove it catches each of those.
# deploy-check runs helm, kustomize and kubecheck from the binaries
# "go tool -n" names (building them if need be), as deploy's tests do: each
# "go tool X" loads the tools module's whole package graph first, about a
# second of CPU a run.
deploy-check: ## Render every kustomization and the Helm chart, check them with kubecheck; promtool on the alert rules
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	out="$$(mktemp -d)"; trap 'rm -rf "$$out"' EXIT; \
	echo "(cd tools && go test -count=1 ./kubecheck)"; \
	(cd tools && go test -count=1 ./kubecheck); \
	helm="$$(cd tools && go tool -n helm)"; kustomize="$$(cd tools && go tool -n kustomize)"; \
	kubecheck="$$(cd tools && go tool -n kubecheck)"; \
	kustomizations="$$(grep -l '^kind: Kustomization$$' $$(find deploy/kubernetes -name kustomization.yaml) | xargs -n1 dirname | sort)"; \
	[ -n "$$kustomizations" ] || { echo "deploy-check: no kustomization under deploy/kubernetes" >&2; exit 1; }; \
	for dir in $$kustomizations; do \
		f="$$out/kustomize-$$(echo "$$dir" | tr / -).yaml"; \
		echo "kustomize build $$dir > $$f"; \
		"$$kustomize" build "$$dir" > "$$f"; \
	done; \
	for values in default deploy/helm/examples/control-plane.yaml deploy/helm/examples/exchange.yaml deploy/helm/examples/sentinel.yaml; do \
		set --; name=lockbox; \
		if [ "$$values" != default ]; then set -- -f "$$values"; name="$$(basename "$$values" .yaml)"; fi; \
		echo "helm lint --strict --kube-version $(KUBE_VERSION) deploy/helm/lockbox $$*"; \
		"$$helm" lint --strict --kube-version $(KUBE_VERSION) deploy/helm/lockbox "$$@"; \
		echo "helm template $$name deploy/helm/lockbox --namespace $$name --kube-version $(KUBE_VERSION) $$* > $$out/helm-$$name.yaml"; \
		"$$helm" template "$$name" deploy/helm/lockbox --namespace "$$name" --kube-version $(KUBE_VERSION) "$$@" > "$$out/helm-$$name.yaml"; \
	done; \
	echo "kubecheck $$out/*.yaml"; \
	"$$kubecheck" "$$out"/*.yaml; \
	echo "promtool check rules deploy/prometheus/lockbox.rules.yml"; \
	promtool check rules deploy/prometheus/lockbox.rules.yml; \
	echo "promtool check config deploy/prometheus/prometheus.yml"; \
	promtool check config deploy/prometheus/prometheus.yml; \
	echo "promtool test rules deploy/prometheus/lockbox.rules.test.yml"; \
	promtool test rules deploy/prometheus/lockbox.rules.test.yml

bench: ## Benchmarks only (no tests), with allocations
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	echo "go test -run '^$$' -bench . -benchmem ./..."; \
	go test -run '^$$' -bench . -benchmem ./...

loadbench: ## End-to-end load: a bare Go reverse proxy and lockbox serve, same upstream, ratio reported
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	echo "go run ./internal/loadbench -c 16,64 -d 10s"; \
	go run ./internal/loadbench -c 16,64 -d 10s

capacity: ## Capacity model: Redis memory, commands and CPU per tenant, request, grant, audit record, session (docs/operations.md)
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	echo "go run ./internal/capacity -tenants 100 -requests 1000 -calls 20000 -sessions 1000"; \
	go run ./internal/capacity -tenants 100 -requests 1000 -calls 20000 -sessions 1000

capacity-idle: ## Idle Redis commands/s of one replica with 10 and 10 000 tenants (docs/operations.md)
	./scripts/ensure-deps.sh
	@$(SCRUB_ENV); \
	echo "go run ./internal/capacity -mode idle -tenants 10,10000"; \
	go run ./internal/capacity -mode idle -tenants 10,10000

lint: ## Fail if any file needs gofmt, then go vet
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run: make fmt):" >&2; \
		echo "$$unformatted" >&2; \
		exit 1; \
	fi
	$(STATIC) go vet $(STATICFLAGS) ./...

fmt: ## gofmt every Go file
	gofmt -w .
