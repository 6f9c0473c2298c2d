# socklab: every target works offline once Go modules are in the module cache.
# Modules are found from go.work, so a new service needs no edit here.

export GOTOOLCHAIN := local
GO        ?= go
MODULES   := $(shell $(GO) list -m -f '{{.Dir}}')
BIN       := $(CURDIR)/bin
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
COUNT     ?= 5
COMPOSE   ?= docker compose
N         ?= 3

.PHONY: all build test vet fmt fuzz bench clean compose images up down logs load results capture e2e check deps

all: fmt vet test build

## check: everything CI runs: install missing test tools, format, vet, unit tests, end to end
check: deps fmt vet test e2e

## deps: install what the tests need and the machine lacks (apt, Compose v2)
deps:
	@deploy/install-deps.sh

## build: static binaries of every cmd/* into bin/
build:
	@mkdir -p $(BIN)
	@for m in $(MODULES); do \
	  for c in $$m/cmd/*/; do [ -d "$$c" ] || continue; \
	    echo "build $$(basename $$c)"; \
	    (cd $$m && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/$$(basename $$c) ./cmd/$$(basename $$c)) || exit 1; \
	  done; done

## test: every module's tests with the race detector
test:
	@for m in $(MODULES); do echo "test $$m"; (cd $$m && $(GO) test -race -count=1 ./...) || exit 1; done

## vet: go vet on every module
vet:
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

## fmt: fail when a file is not gofmt-formatted
fmt:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: every Fuzz target for FUZZTIME each
fuzz:
	@for m in $(MODULES); do \
	  for p in $$(cd $$m && $(GO) list ./...); do \
	    for f in $$(cd $$m && $(GO) test -list '^Fuzz' $$p | grep '^Fuzz'); do \
	      echo "fuzz $$p $$f"; (cd $$m && $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p) || exit 1; \
	    done; done; done

## bench: every benchmark and external reference, ours against each, in one table (results/bench.md)
bench:
	@COUNT=$(COUNT) BENCHTIME=$(BENCHTIME) GO=$(GO) deploy/bench.sh

## soak: every server from bin/ under 1,000 honest clients each, on loopback, for SOAK_DURATION (10m); not part of check
SOAK_DURATION ?= 10m
.PHONY: soak
soak: build
	@cd deploy/soak && $(GO) run . -bin $(BIN) -duration $(SOAK_DURATION)

## compose: make sure `docker compose` (v2) works, building it from its Go module if missing
compose:
	@deploy/install-compose.sh

## images: static binaries into bin/image, then every image FROM scratch (no registry needed)
images: compose
	@$(GO) run ./services/kit/cmd/imagebin -o $(BIN)/image
	@SOCKLAB_BINARIES=prebuilt $(COMPOSE) --profile capture build

## up: build the images and start the lab; returns when every server is healthy
up: images
	@SOCKLAB_BINARIES=prebuilt $(COMPOSE) up -d --wait
	@$(COMPOSE) ps --format 'table {{.Service}}\t{{.Status}}\t{{.Ports}}'

## down: stop the lab (volumes kept; `make down V=1` removes them too)
down:
	@$(COMPOSE) --profile capture down $(if $(V),-v)

## logs: follow every service's log
logs:
	@$(COMPOSE) logs -f --tail=50

## load: run N load generators (make load N=4)
load:
	@SOCKLAB_BINARIES=prebuilt $(COMPOSE) up -d --wait --scale loadgen=$(N)
	@$(COMPOSE) ps loadgen

## results: merge the load generators' result files into one report (SINCE=10m: recent rounds only)
results:
	@docker run --rm -v socklab_results:/results:ro --entrypoint /app socklab/loadgen:dev merge $(if $(SINCE),-since $(SINCE)) /results

## capture: record the socklab0 bridge into ./captures (make down stops it)
capture:
	@mkdir -p captures && chmod 1777 captures
	@SOCKLAB_BINARIES=prebuilt $(COMPOSE) --profile capture up -d --wait capture
	@echo "capturing socklab0 into $(CURDIR)/captures/ (open with wireshark or tshark -r)"

## e2e: the lab end to end on this machine's Docker Engine
e2e:
	@deploy/e2e.sh

## clean: remove build output
clean:
	rm -rf $(BIN)
