# uvs — userspace virtual server.
#   make demo   build, run a namespace lab with uvsd and real traffic, clean up
#   make test   install what the tests need, then run every test
#   make bench  Go benchmarks and the lab benchmark against kernel peers
export PATH := $(PATH):/usr/local/go/bin:/usr/sbin:/sbin
GO      ?= go
BIN     := $(CURDIR)/bin
# Unit packages: no root, no namespaces; run under the race detector.
UNIT    := ./header/... ./modes/... ./conntrack/... ./sched/... ./config/... ./ipvsadm/... ./service/... ./control/... ./daemon/... ./health/... ./vrrp/... ./connsync/...
# Packages whose tests build namespace labs (root; they skip otherwise, fail under CI=true).
LAB     := ./lab/... ./nexthop/... ./nsexec/... ./dataplane/... ./hostlocal/... ./nfqueue/... ./e2e/... ./bench/...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

# command:debian-package pairs the tests and the demo need.
DEBS := nginx:nginx-light curl:curl ip:iproute2 ping:iputils-ping keepalived:keepalived \
        wrk:wrk iperf3:iperf3 nft:nftables haproxy:haproxy tcpdump:tcpdump ethtool:ethtool

.PHONY: all build deps test unit lab lint demo bench gobench labbench fuzz clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/...

# Installs the Debian packages that are missing (apt-get update once), as root.
deps:
	@missing=""; for pair in $(DEBS); do cmd=$${pair%%:*}; pkg=$${pair#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing packages:$$missing (run make as root to install them)"; \
	  else echo "installing:$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi; \
	fi

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 $(UNIT)

lab: build
	$(GO) test -count=1 -p 1 -timeout 12m $(LAB)

test: deps lint unit lab

demo: deps build
	$(BIN)/uvsdemo -bin $(BIN)

gobench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./header/... ./modes/... ./conntrack/... ./sched/... ./dataplane/... ./vrrp/... ./connsync/...

labbench: deps build
	$(BIN)/uvsbench -bin $(BIN)

bench: gobench labbench

# Short fuzzing session for every fuzz target (the seed corpora run in `make unit`).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 20s $$pkg || exit 1; done; done

clean:
	rm -rf $(BIN)
