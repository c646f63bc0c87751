# Lurus Switch: local stack, build and test entry points. `make help` lists them.
#
# dev.env supplies development defaults. A variable already set in the
# environment or on the command line wins: `LURUS_REDIS_ADDR=127.0.0.1:16379
# make test` and `make test LURUS_REDIS_ADDR=...` both work.
# LURUS_REQUIRE_INTEGRATION=1 (set by .ci/run) reaches the tests through the
# environment: a missing server then fails the tests instead of skipping them.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# dev.env is turned into `KEY ?= value` + `export KEY` lines (so the
# environment wins); make rebuilds this file whenever dev.env changes.
# `$` and `#` are escaped for make; one pair of surrounding quotes is removed.
DEV_ENV_MK := .data/dev.env.mk
$(DEV_ENV_MK): dev.env
	@mkdir -p $(@D)
	@sed -n -E \
		-e 's/\$$/$$$$/g' -e 's/#/\\#/g' \
		-e 's/^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(["'"'"']?)(.*)\2[[:space:]]*$$/\1 ?= \3\nexport \1/p' \
		dev.env > $@
include $(DEV_ENV_MK)

.PHONY: help stack-up stack-down stop stack-status test test-short chaos fuzz build run fmt-check lint vuln clean

# How long each fuzz target runs: FUZZTIME in `make fuzz`, FUZZTIME_TEST in
# the short pass at the end of `make test` (CI). `make fuzz FUZZTIME=10m`.
FUZZTIME ?= 60s
FUZZTIME_TEST ?= 3s

# go test flags of `make chaos`; -v prints each scenario's RESULT line.
CHAOSFLAGS ?= -v

help: ## list the targets
	@printf 'Lurus Switch make targets:\n'
	@grep -hE '^[a-zA-Z_-]+( [a-zA-Z_-]+)*:.*## ' $(MAKEFILE_LIST) | \
		sed -E 's/^([^:]+):.*## (.*)$$/\1\t\2/' | \
		awk -F'\t' '{ printf "  %-24s %s\n", $$1, $$2 }'

stack-up: ## start (or reuse) PostgreSQL, Redis, NATS and ClickHouse, apply init-db.sql
	scripts/stack.sh up

stack-down stop: ## stop the services `make run` started, then the servers stack-up started
	scripts/run.sh stop
	scripts/stack.sh down

stack-status: ## one line per server: up/down, reused/started, address
	scripts/stack.sh status

test: fmt-check stack-up ## gofmt check, stack-up, go vet + go test -race in every go.work module, each fuzz target for FUZZTIME_TEST, then the fault suite
	scripts/go-modules.sh test
	FUZZTIME=$(FUZZTIME_TEST) scripts/go-modules.sh fuzz
	$(MAKE) chaos

test-short: stack-up ## stack-up, then go vet + go test (no -race) in every module: the quick loop
	scripts/go-modules.sh test-short

# The suite runs its own private servers from the installed programs; CI's
# shared servers may be containers, so stack-up alone does not install them.
chaos: ## fault suite (chaos/): private PostgreSQL, NATS, Redis, ClickHouse and services, killed and cut under load; see RELIABILITY.md
	scripts/stack.sh install postgres redis nats clickhouse
	cd chaos && go test -count=1 -timeout 15m $(CHAOSFLAGS) ./...

fuzz: ## run every FuzzXxx target of every module, one at a time, for FUZZTIME (default 60s)
	FUZZTIME=$(FUZZTIME) scripts/go-modules.sh fuzz

build: ## build bin/<service> for every <module>/cmd/<module>, plus bin/mock-upstream and the bin/bench-* tools
	scripts/go-modules.sh build

run: ## stack-up, build, migrate and start every service, seed a demo, print a curl
	scripts/run.sh

fmt-check: ## fail if a tracked .go file is not gofmt-formatted
	scripts/go-modules.sh fmt-check

lint: ## go vet every module
	scripts/go-modules.sh vet

vuln: ## govulncheck every module (go install golang.org/x/vuln/cmd/govulncheck@latest)
	scripts/go-modules.sh vuln

clean: ## remove bin/ (the stack's data in .data/ stays; stop it first with make stop)
	rm -rf bin
