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

.PHONY: all build test vet fmt fuzz bench bench-capture clean compose images up down logs load results capture e2e check deps impair impair-image

all: fmt vet test build

## check: everything CI runs: install missing test tools, format, vet, unit tests, end to end
check: deps fmt vet test e2e swarm-check

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

## bench-capture: capture against tcpdump under the lab's UDP load, alone (lab up; as root)
bench-capture:
	@t=$$(mktemp) && COUNT=$(COUNT) deploy/bench-capture.sh $$t && $(GO) run ./services/kit/cmd/benchtable -tsv $$t /dev/null; s=$$?; rm -f $$t; exit $$s

## stress: every package's race test binary, COPIES (3) at once, -count=COUNT (4), to find tests that fail under load; PKGS narrows it; not part of check
COPIES ?= 3
STRESS_COUNT ?= 4
PKGS ?= .
stress:
	@COPIES='$(COPIES)' COUNT='$(STRESS_COUNT)' PKGS='$(PKGS)' GO='$(GO)' deploy/stress.sh

## soak: every server from bin/ under 1,000 honest clients each, on loopback, for SOAK_DURATION (10m); not part of check
SOAK_DURATION ?= 10m
.PHONY: soak stress
soak: build
	@cd deploy/soak && $(GO) run . -bin $(BIN) -duration $(SOAK_DURATION)

## compose: make sure `docker compose` (v2) works, building it from its Go module if missing
compose:
	@deploy/install-compose.sh

## images: static binaries into bin/image (clients linked into bin/), then every image FROM scratch (no registry needed)
images: compose
	@$(GO) run ./services/kit/cmd/imagebin -o $(BIN)/image
	@for f in $(BIN)/image/*/*-client; do ln -sf "$${f#$(BIN)/}" $(BIN)/; done
	@SOCKLAB_BINARIES=prebuilt $(COMPOSE) --profile capture build

## up: build the images and start the lab; returns when every server is healthy
up: images
	@mkdir -p captures # the dashboard mounts it; made here, it is the user's, not root's
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

## wireshark: install the socklab Lua dissectors where Wireshark and tshark load personal Lua plugins
.PHONY: wireshark
wireshark:
	@dir=$$(tshark -G folders 2>/dev/null | sed -n 's/^Personal Lua Plugins:[[:space:]]*//p'); \
	dir=$${dir:-$$HOME/.local/lib/wireshark/plugins}/socklab; \
	mkdir -p "$$dir" && cp deploy/wireshark/plugins/*.lua "$$dir/" && \
	echo "installed the socklab dissectors into $$dir (wireshark or tshark -r captures/x.pcap decodes them)"

## screenshot: a PNG of the dashboard (http://127.0.0.1:8080/, make up first) into results/dashboard.png
.PHONY: screenshot
screenshot:
	@command -v chromium >/dev/null || { echo "screenshot: chromium is missing: run make deps"; exit 1; }
	@mkdir -p results
	@profile=$$(mktemp -d); timeout 60 chromium --headless $(if $(filter 0,$(shell id -u)),--no-sandbox) --disable-gpu \
	  --hide-scrollbars --user-data-dir=$$profile --window-size=1400,1900 --timeout=6000 \
	  --screenshot=$(CURDIR)/results/dashboard.png http://127.0.0.1:8080/ >/dev/null 2>&1; rc=$$?; rm -rf $$profile; exit $$rc
	@echo "results/dashboard.png"

## e2e: the lab end to end on this machine's Docker Engine
e2e:
	@deploy/e2e.sh

## impair: shape a service's links, both directions (make impair SERVICE=filestream LOSS=10% RATE=2mbit DELAY=40ms JITTER=10ms);
##         SERVICE alone clears it, nothing lists what is in force (see services/impair)
impair: impair-image
	@$(BIN)/impair $(if $(SERVICE),set $(SERVICE) $(if $(LOSS),-loss $(LOSS)) $(if $(RATE),-rate $(RATE)) $(if $(DELAY),-delay $(DELAY)) $(if $(JITTER),-jitter $(JITTER)),list)

## impair-image: the impair command on the host (bin/impair) and the image it runs in a container's namespace
impair-image:
	@mkdir -p $(BIN)
	@cd services/impair && CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o $(BIN)/impair ./cmd/impair
	@$(GO) run ./services/kit/cmd/imagebin -only impair -o $(BIN)/image >/dev/null
	@$(COMPOSE) -f deploy/impair.compose.yml build --quiet impair

## clean: remove build output
clean:
	rm -rf $(BIN)

# The lab on Docker Swarm (deploy/swarm/README.md): a manager through
# DOCKER_HOST or the docker context; SWARM_NODES lists every node's daemon
# for swarm-results.
.PHONY: swarm-up swarm-load swarm-results swarm-down swarm-check

## swarm-up: deploy the lab as the stack socklab; returns when every server is healthy
swarm-up:
	@deploy/swarm/swarm.sh up 1

## swarm-load: run N load generators spread over the swarm's nodes (make swarm-load N=6)
swarm-load:
	@deploy/swarm/swarm.sh load $(N)

## swarm-results: gather the result files of every node in SWARM_NODES and merge them (SINCE=10m)
swarm-results:
	@deploy/swarm/swarm.sh results $(SINCE)

## swarm-down: remove the stack (each node keeps its volumes)
swarm-down:
	@deploy/swarm/swarm.sh down

## swarm-check: the stack on a three-node swarm simulated on this host (root; the host's dockerd stays out of swarm mode)
swarm-check:
	@deploy/swarm/check.sh
