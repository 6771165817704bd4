# The commands a user runs: `make demo` (try it), `make test` (everything CI runs).
SHELL := /usr/bin/env bash
GO ?= go
# := so every use in one make run sees the same version, even if a commit lands meanwhile.
VERSION ?= $(shell scripts/version.sh)
VERSION := $(VERSION)
MODULE := github.com/navercommerce/vault-plugin-secrets-navercommerce
LDFLAGS := -s -w -X $(MODULE).Version=$(VERSION)
BIN := bin
PLUGIN := $(BIN)/vault-plugin-secrets-navercommerce
EMULATOR := $(BIN)/navercommerce-emulator

.PHONY: all build version vault test unit-test fuzz acceptance-test demo demo-restart-agent demo-stop bench go-bench sim check-model release lint fmt vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(PLUGIN) ./cmd/vault-plugin-secrets-navercommerce
	CGO_ENABLED=0 $(GO) build -trimpath -o $(EMULATOR) ./cmd/navercommerce-emulator
	@echo "$(PLUGIN) -version: $$($(PLUGIN) -version)"

# Prints the version `make build` stamps into the plugin, alone on its line (for scripts).
version:
	@echo $(VERSION)

# Prints the path of the pinned Vault, building it the first time (20-40 minutes on 2 cores).
vault:
	@scripts/install-vault.sh

# Everything: lint, unit tests with the race detector, short fuzz runs, the real-Vault tests.
test: lint unit-test fuzz acceptance-test

# promtool (Debian's prometheus) lets the metrics unit tests check the exposition too;
# Python with requests (Debian's python3-hvac brings it) runs the README's snippets.
unit-test:
	PROMTOOL="$$(scripts/install-prometheus.sh)/promtool" PYTHON="$$(scripts/install-python-hvac.sh)" \
	$(GO) test -race -count=1 -timeout 25m ./...

FUZZTIME ?= 10s
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

# The server the acceptance tests run the plugin in: vault (the pinned Vault, built on first
# use), or openbao when BAO_BINARY names an OpenBao `bao` (or SERVER=openbao finds one on
# PATH). Nothing here gets or builds OpenBao: see README.md, "OpenBao".
SERVER ?= $(if $(BAO_BINARY),openbao,vault)
ACCEPTANCE_ENV = PLUGIN_BIN="$(CURDIR)/$(PLUGIN)" PLUGIN_VERSION="$(VERSION)" EMULATOR_BIN="$(CURDIR)/$(EMULATOR)"
ACCEPTANCE_RUN = $(GO) test -count=1 -tags acceptance -timeout 30m ./acceptance/... ./internal/harness/

acceptance-test: build
ifeq ($(SERVER),openbao)
	@bao="$${BAO_BINARY:-$$(command -v bao || true)}"; \
	[ -n "$$bao" ] && [ -x "$$bao" ] || { echo "SERVER=openbao: set BAO_BINARY to an OpenBao bao binary (none on PATH)" >&2; exit 1; }; \
	echo "acceptance tests against $$("$$bao" version | head -n1)"; \
	BAO_BINARY="$$bao" VAULT_BIN= $(ACCEPTANCE_ENV) $(ACCEPTANCE_RUN)
else ifeq ($(SERVER),vault)
	BAO_BINARY= VAULT_BIN="$$(scripts/install-vault.sh)" $(ACCEPTANCE_ENV) $(ACCEPTANCE_RUN)
else
	@echo "SERVER=$(SERVER): want vault or openbao" >&2; exit 1
endif

demo: build
	@VAULT_BIN="$$(scripts/install-vault.sh)" PLUGIN_VERSION="$(VERSION)" scripts/demo.sh start

# A new Vault Agent process for the running demo: an agent keeps a token Naver refuses (after a
# rotation of the client secret) until it is restarted.
demo-restart-agent:
	@scripts/demo.sh restart-agent

demo-stop:
	@scripts/demo.sh stop

bench:
	@$(MAKE) -s build
	@VAULT_BIN="$$(scripts/install-vault.sh)" PLUGIN_VERSION="$(VERSION)" scripts/bench.sh

# Go micro-benchmarks alone (benchstat-friendly): make go-bench > new.txt; benchstat old.txt new.txt
go-bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 .

# The long simulation campaign: seeds of internal/sim's long shape (one application of 100
# keys for 10 days each) for SIMTIME on every CPU, written up in docs/simulation.md (TestSim's
# short campaign is part of unit-test). Issue 18's 10,000-seller week is another command:
# go test ./internal/sim -run 'TestSellersWeek$' -count=1 -sellers-week-out=PATH
SIMTIME ?= 10m
sim:
	$(GO) test ./internal/sim -run TestCampaign -count=1 -timeout 2h -campaign=$(SIMTIME) -shape=long -campaign-out=$(CURDIR)/docs/simulation.md -campaign-code=$(VERSION)

# The model checker: every sequence of events of the decision core's small worlds
# (internal/modelcheck Worlds), each to its depth, every invariant after every event; written
# up in docs/simulation.md. A shallower run of it is part of unit-test.
check-model:
	$(GO) test ./internal/modelcheck -run TestExplore -count=1 -timeout 3h -v -args -depth=-1 -report=$(CURDIR)/docs/simulation.md -code=$(VERSION)

release:
	@VERSION=$(VERSION) scripts/release.sh

lint:
	@scripts/lint.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN) dist .demo
