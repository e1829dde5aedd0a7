# cubby — see README.md. Targets need root except build and lint.

GO ?= go
export PATH := /usr/local/go/bin:$(PATH)

BIN ?= bin

# The version stamped into the binaries (`cubbyd --version`, the CRI Version
# RPC): git describe, or "dev" outside a git checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X cubby/cmd/internal/buildinfo.version=$(VERSION) -X cubby/cmd/internal/buildinfo.commit=$(COMMIT)

.PHONY: all build deps test race run lint clean bench critest churn install uninstall

all: build

## build: compile cubbyd, cubby-pod and cubby into bin/
# cubby-pod is built without cgo: a static binary starts faster (it is
# re-executed for every container start and every exec) and maps less.
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...
	CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./cmd/cubby-pod

## install: install the binaries into $(DESTDIR)$(PREFIX)/bin, the systemd
## unit into $(DESTDIR)/lib/systemd/system, a commented default config into
## $(DESTDIR)/etc/cubby/config.toml (an existing one is kept) with an empty
## config.d/ for drop-ins, and the crictl.yaml example into
## $(DESTDIR)$(PREFIX)/share/doc/cubby. Builds first when needed.
## uninstall: remove them again; a config.toml the operator changed stays.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR = $(DESTDIR)$(PREFIX)/bin
UNITDIR = $(DESTDIR)/lib/systemd/system
CONFDIR = $(DESTDIR)/etc/cubby
DOCDIR = $(DESTDIR)$(PREFIX)/share/doc/cubby
BINARIES = cubbyd cubby-pod cubby
# The installed config: cubbyd's defaults with every setting commented out,
# so it documents them without pinning them. $(1) is the cubbyd to ask.
commented_config = { echo '\# cubbyd configuration. Every setting below is commented out and shows its'; \
	echo '\# default; drop-in files in config.d/ (*.toml, applied in lexical order) go on top.'; \
	echo; $(1) --print-default-config | sed -e '/^[^\#]/s/^/\# /'; }

install: build
	install -d $(BINDIR) $(UNITDIR) $(CONFDIR)/config.d $(DOCDIR)
	install -m 0755 $(addprefix $(BIN)/,$(BINARIES)) $(BINDIR)/
	sed -e 's|/usr/local/bin/|$(PREFIX)/bin/|g' contrib/cubby.service > $(UNITDIR)/cubby.service
	chmod 0644 $(UNITDIR)/cubby.service
	install -m 0644 contrib/crictl.yaml $(DOCDIR)/crictl.yaml
	@if [ -e $(CONFDIR)/config.toml ]; then \
		echo "keeping the existing $(CONFDIR)/config.toml"; \
	else \
		$(call commented_config,$(BIN)/cubbyd) > $(CONFDIR)/config.toml.tmp && \
		chmod 0644 $(CONFDIR)/config.toml.tmp && mv $(CONFDIR)/config.toml.tmp $(CONFDIR)/config.toml; \
	fi

uninstall:
	@if [ -x $(BINDIR)/cubbyd ] && $(call commented_config,$(BINDIR)/cubbyd) | cmp -s - $(CONFDIR)/config.toml; then \
		rm -f $(CONFDIR)/config.toml; \
	elif [ -e $(CONFDIR)/config.toml ]; then \
		echo "keeping $(CONFDIR)/config.toml: it differs from the installed default"; \
	fi
	-rmdir $(CONFDIR)/config.d $(CONFDIR) 2>/dev/null
	rm -f $(addprefix $(BINDIR)/,$(BINARIES)) $(UNITDIR)/cubby.service $(DOCDIR)/crictl.yaml
	-rmdir $(DOCDIR) 2>/dev/null

## deps: install the Debian packages the runtime and the tests need
deps:
	hack/install-deps.sh

## test: the whole test suite: upstream critest against cubbyd (see critest
## below), the unit and real-kernel tests under the race detector (race), then
## our end-to-end CRI tests (root)
test: deps critest race
	$(GO) test -count=1 -p 1 ./critest/

## race: every package but the end-to-end suite under `go test -race` (the
## fuzz targets' seed corpora run here too)
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '^cubby/critest$$')
race: build
	$(GO) test -race -count=1 -p 2 $(UNIT_PKGS)

## critest: the upstream cri-tools critest (v1.37.0, built from hack/critest)
## against a private cubbyd with offline stand-in images; fails when a spec
## listed in hack/critest/passing.txt does not pass or the run leaks (root).
## Pass critest flags with CRITEST_ARGS="-- -ginkgo.focus=Streaming".
CRITEST_ARGS ?=
critest: deps build
	$(GO) build -o $(BIN)/critestenv ./hack/critestenv
	CGO_ENABLED=0 $(GO) build -o $(BIN)/critest-standin ./hack/critestenv/standin
	cd hack/critest && $(GO) test -c -o ../../$(BIN)/critest sigs.k8s.io/cri-tools/cmd/critest
	$(BIN)/critestenv $(CRITEST_ARGS)

## run: start cubbyd with its default config (root)
run: deps build
	$(BIN)/cubbyd

## bench: private cubbyd + loopback registry, then `cubby bench` against it (root;
## not part of test). Pass bench flags with BENCH_ARGS="--n 20 --idle 5s".
BENCH_ARGS ?=
bench: build
	$(GO) build -o $(BIN)/benchenv ./hack/benchenv
	$(BIN)/benchenv --cubbyd $(BIN)/cubbyd --cubby $(BIN)/cubby $(BENCHENV_ARGS) -- $(BENCH_ARGS)

## churn: the full churn (root; not part of test): 200 pod lifecycles, 8 at
## a time, with image pulls and removals, against a private cubbyd; prints
## cubbyd's fds, threads and RSS before and after and fails on any leak.
## The suite runs the same test with 20 cycles.
CHURN_ARGS ?= -churn.cycles 200 -churn.parallel 8
churn:
	$(GO) test -count=1 -timeout 30m -run 'TestChurn$$' -v ./critest/ $(CHURN_ARGS)

## lint: gofmt, go vet and staticcheck must all be clean
lint:
	@unformatted=$$(gofmt -l .); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	@sc=$$(command -v staticcheck || echo "$$($(GO) env GOPATH)/bin/staticcheck"); \
	if [ ! -x "$$sc" ]; then $(GO) install honnef.co/go/tools/cmd/staticcheck@latest; fi; \
	echo "$$sc ./..."; "$$sc" ./...

clean:
	rm -rf $(BIN)
