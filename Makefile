# Sluice — the two commands that matter: `make run` and `make test`.
GO        ?= go
BIN       := bin/sluice
DATADIR   ?= $(CURDIR)/var
CONFIG    ?= etc/sluice.cnf
BACKENDS  := scripts/backends.sh
PKGS      := ./...
# Test backends: real MariaDB servers on 127.0.0.1:23307.. (scripts/backends.sh).
export SLUICE_BACKENDS_DIR  ?= $(or $(TMPDIR),/tmp)/sluice-backends
export SLUICE_BACKENDS_PORT ?= 23306

.PHONY: all build run test unit vet fmt fmt-check lint bench fuzz soak backends backends-stop clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sluice

## run: build and start Sluice with etc/sluice.cnf and the datadir ./var
run: build
	@mkdir -p $(DATADIR)
	./$(BIN) -c $(CONFIG) -D $(DATADIR) --no-monitor

## test: install what is missing, start real backends, vet, race-test everything
## (GORACE atexit_sleep_ms=0: no pause of a second at each race-built process exit)
test: fmt-check vet
	@SLUICE_BACKENDS_EXTRA_PKGS="sysbench php python3-pymysql java perl node chromium curl haproxy" $(BACKENDS) start 3
	@set -e; rc=0; \
	GORACE="$${GORACE:-atexit_sleep_ms=0}" $(GO) test -race -count=1 -timeout 20m $(PKGS) || rc=$$?; \
	$(BACKENDS) stop; \
	exit $$rc

## unit: tests without starting backends (integration tests start them themselves)
unit:
	$(GO) test -race -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)
	$(GO) vet -tags soak ./internal/e2e

fmt:
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; find . -name '*.go' -not -path './.git/*' 2>/dev/null) 2>/dev/null | sort -u); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## lint: gofmt, go vet, go.mod tidy, and staticcheck (installed with go install when missing)
STATICCHECK ?= $(shell go env GOPATH)/bin/staticcheck
lint: fmt-check vet
	$(GO) mod tidy -diff
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(STATICCHECK) $(PKGS)

## bench: Go micro-benchmarks of the hot path
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## fuzz: run every fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | while read f; do \
		d=$$(dirname $$f); for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$f | sed 's/func //'); do \
			echo "== $$d $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 3s $$d || exit 1; done; done

## soak: SOAK (default 10m) of sysbench and stateful sessions under chaos
## (LOAD every second, OFFLINE_SOFT flips, backend kill -9, half-open
## sockets); not part of `make test`. Figures in the test log.
SOAK ?= 10m
soak: vet
	@SLUICE_BACKENDS_EXTRA_PKGS="sysbench" $(BACKENDS) start 3
	@set -e; rc=0; \
	SLUICE_SOAK_DURATION=$(SOAK) $(GO) test -tags soak -count=1 -v -timeout 3h -run '^TestSoak$$' ./internal/e2e || rc=$$?; \
	$(BACKENDS) stop; \
	exit $$rc

backends:
	$(BACKENDS) start 3

backends-stop:
	$(BACKENDS) stop

clean:
	rm -rf bin

## bench-sysbench: sysbench direct vs HAProxy vs Sluice on real MariaDB (scripts/bench/all.sh)
.PHONY: bench-sysbench
bench-sysbench:
	scripts/bench/all.sh
