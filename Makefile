# quotehub — make targets. `make run` starts one node; `make test` is what CI runs.
GO ?= go
PKGS := ./...

.PHONY: run build test check lint fmt vet race fuzz fuzz-short bench services clients deploy-tools browser clean

run:
	$(GO) run ./cmd/quotehub

build:
	$(GO) build -o bin/quotehub ./cmd/quotehub

# test: formatting, vet, a tidy go.mod, the linters, and every test with the race
# detector, against the real Redis that scripts/services.sh brings up on
# loopback (it starts MariaDB too, kept ready for the planned MySQL store).
test: services clients deploy-tools browser check lint race fuzz-short

services:
	bash scripts/services.sh

# deploy-tools: promtool and docker-compose, which the tests of deploy/ use
# to check the alert rules and the compose stack.
deploy-tools:
	bash scripts/deploy-tools.sh

# clients: the independent WebSocket clients (Python, Node) the tests use.
clients:
	bash scripts/clients.sh

# browser: headless Chromium for the board's browser tests.
browser:
	bash scripts/browser.sh

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff

# lint: golangci-lint and govulncheck (scripts/lint.sh), installed at
# pinned versions by scripts/tools.sh into .tools/; about 40 s once the
# tools are built (the first run builds them: a few minutes).
lint:
	bash scripts/lint.sh

race:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

# fuzz: a longer run of the client-frame fuzzer than make test's. Fuzz
# times are counts of inputs, not durations: a timed run can end in
# "context deadline exceeded" from the fuzzing coordinator instead of a
# verdict.
FUZZTIME ?= 2000000x
fuzz:
	$(GO) test ./hub -run '^$$' -fuzz FuzzDecodeRequest -fuzztime $(FUZZTIME)

# fuzz-short: the fuzzers' short runs in make test, beyond their seed corpora
# (client frames, and tokens).
fuzz-short:
	$(GO) test ./hub -run '^$$' -fuzz FuzzDecodeRequest -fuzztime 20000x
	$(GO) test ./auth -run '^$$' -fuzz FuzzVerify -fuzztime 20000x

# bench: the micro-benchmarks and a short, bounded run of every load
# scenario (a few minutes); results are appended to docs/BENCHMARKS.md.
# scripts/bench.sh runs the full sizes.
bench: services
	$(GO) run ./cmd/quotebench -size short

clean:
	rm -rf bin

# mutants: break chosen behaviours on purpose (on a copy of the tree) and
# check that the owning package's tests fail; not part of make test.
# MUTANTS=regex runs some of them. See docs/testing.md.
.PHONY: mutants
mutants: services
	bash scripts/mutants.sh $(MUTANTS)
