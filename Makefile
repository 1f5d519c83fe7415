# finproxy — the two commands a newcomer needs are `make demo` and `make test`.
GO      ?= go
BIN     := bin/finproxy
EMU     := bin/finapi-emulator
PORT    ?= 8080
ADMIN   ?= 9090
EMUPORT ?= 18081

.PHONY: all build demo test vet fmt bench fuzz redis clean

all: build

build:
	$(GO) build -o $(BIN) .
	$(GO) build -o $(EMU) ./test/cmd/finapi-emulator

# demo: the local finAPI emulator plus finproxy wired to it; no credentials,
# no internet. Ctrl-C stops both.
demo: build
	@./scripts/demo.sh

# staticcheck at a pinned version, from the Go module proxy (nothing to
# install by hand).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# test: everything, with the race detector. A Redis server is started if
# none answers (see scripts/ensure-redis.sh).
test: vet
	@./scripts/ensure-redis.sh
	$(GO) test -race -count=1 -timeout 9m ./...

# fuzz: every Go fuzz target, about 30 s each (FUZZX=3 times the execution
# counts in scripts/fuzz.sh); .ci/run runs them at FUZZX=1 after the tests.
FUZZX ?= 3
fuzz:
	FUZZX=$(FUZZX) ./scripts/fuzz.sh

# bench: the Go benchmarks, then the wrk load benchmark on loopback (bare
# ReverseProxy vs finproxy; see scripts/bench-proxy.sh for its knobs).
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	./scripts/bench-proxy.sh

clean:
	rm -rf bin
