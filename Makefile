# finproxy — the two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/finproxy
EMU     := bin/finapi-emulator
PORT    ?= 8080
ADMIN   ?= 9090
EMUPORT ?= 18081
# VERSION is stamped into bin/finproxy (--version, finproxy_build_info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
WEBPORT ?= 8000

.PHONY: all build demo test test-deploy vet fmt bench fuzz redis clean soak

all: build

# build: scripts/build.sh is the one build command (the Dockerfile and a
# test in make test run it too).
build:
	GO=$(GO) ./scripts/build.sh $(BIN) $(VERSION)
	$(GO) build -o $(EMU) ./test/cmd/finapi-emulator

# demo: the local finAPI emulator, finproxy wired to it and a page that calls
# it from a browser (examples/web); no credentials, no internet. Ctrl-C stops
# all three. PORT, ADMIN, EMUPORT and WEBPORT pass through.
demo: build
	$(GO) build -o bin/demoweb ./test/cmd/demoweb
	@PORT=$(PORT) ADMIN=$(ADMIN) EMUPORT=$(EMUPORT) WEBPORT=$(WEBPORT) ./scripts/demo.sh

# staticcheck at a pinned version, from the Go module proxy (nothing to
# install by hand).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# test: everything, with the race detector. A Redis server is started if
# none answers (see scripts/ensure-redis.sh). Then every benchmark runs once
# (-benchtime 1x): nothing is timed, but a benchmark that no longer works
# fails here rather than in make bench.
test: vet test-deploy
	@./scripts/ensure-redis.sh
	@./scripts/ensure-chromium.sh
	@./scripts/ensure-prometheus.sh
	$(GO) test -race -count=1 -timeout 9m ./...
	$(GO) test -run '^$$' -bench . -benchtime 1x -count=1 ./...

# test-deploy: the manifests, the Helm chart, the compose file and the alert
# rules (promtool), in deploy/validate: a module of its own, so Kubernetes,
# Helm and compose never enter finproxy's own module.
test-deploy:
	@./scripts/ensure-prometheus.sh
	cd deploy/validate && $(GO) vet ./... && $(GO) test -count=1 -timeout 5m ./...

# fuzz: every Go fuzz target, about 30 s each (FUZZX=2 times the execution
# counts in scripts/fuzz.sh); .ci/run runs them at FUZZX=1 (about 15 s).
FUZZX ?= 2
fuzz:
	FUZZX=$(FUZZX) ./scripts/fuzz.sh

# bench: the Go benchmarks, then the wrk load benchmark on loopback (bare
# ReverseProxy vs finproxy; see scripts/bench-proxy.sh for its knobs).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./scripts/bench-proxy.sh

# soak: two finproxy replicas sharing Redis in front of the emulator, under
# a steady open-loop load for 10 minutes with 50k sessions; one line a
# minute, then a PLATEAU/GROWTH verdict and its rule (test/cmd/soak).
# SOAK_DURATION, SOAK_RATE and SOAK_SESSIONS pass through, e.g.
# make soak SOAK_DURATION=1m. Not part of make test.
soak: build
	@./scripts/ensure-redis.sh
	$(GO) build -o bin/soak ./test/cmd/soak
	./bin/soak -finproxy $(BIN) $(if $(SOAK_DURATION),-duration $(SOAK_DURATION)) $(if $(SOAK_RATE),-rate $(SOAK_RATE)) $(if $(SOAK_SESSIONS),-sessions $(SOAK_SESSIONS))

clean:
	rm -rf bin
