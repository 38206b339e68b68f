# meshlab: two set-up commands.
#   make lab    create .venv if needed and open the textbook in JupyterLab (PORT, IP)
#   make test   create .venv if needed, install the system packages (as root) and run everything
#   make book   the book as static HTML in _build/book/_build/html (widgets' scripts from npm, cached in ~/.cache/meshlab/book)
#   make test-kind  (readers with Docker, kind, kubectl and istioctl) the kind stage on a real cluster
#
# .venv is made from the system Python (/usr/bin/python3.11 when present) so that a
# process switched to another uid, such as a sidecar running as uid 1337, can still
# execute it: a Python under /root (pyenv) is unreachable for other users.

PYTHON ?= $(firstword $(wildcard /usr/bin/python3.11 /usr/bin/python3) python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.meshlab-installed
PORT ?= 8888
IP ?= 127.0.0.1

# What the tests need from Debian: network namespaces and Istio's rules (iproute2,
# iptables), the browser test (chromium), eBPF (clang, llvm, libbpf-dev, bpftool),
# packet captures (tcpdump), Thrift IDL for the MetaProtocol interop tests (thrift-compiler), the
# chapters' architecture diagrams (graphviz), and Node.js with npm to compile chapter 10's proxy-wasm
# filters from AssemblyScript (nodejs).
APT_PACKAGES := python3-venv iproute2 iptables nftables util-linux procps chromium clang llvm libbpf-dev bpftool tcpdump thrift-compiler graphviz nodejs

.PHONY: lab test test-kind system-packages upstream upstream-for-tests notebooks book

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@# xds-protos ships an old copy of OpenTelemetry's protos at opentelemetry-proto's paths; whichever pip
	@# unpacked last wins. meshlab's tracing needs opentelemetry-proto's (its Span has flags): put it back.
	$(PY) -m pip install --quiet --force-reinstall --no-deps "opentelemetry-proto==1.45.2"
	@touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/meshlab book --ip $(IP) --port $(PORT)

system-packages:
	@if [ "$$(id -u)" = 0 ]; then \
	  missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing with apt-get:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	else echo "not root: skipping apt-get; meshlab doctor says which stages this machine can run"; fi

# The upstream stage: Istio's and the Gateway API's module source (Istio's goldens, the Gateway API's CRDs
# and examples, read at test time) and the upstream programs
# (pilot-agent, pilot-discovery, istioctl, spire-server, spire-agent, egctl, daprd, crane, kube-apiserver, kubectl,
# kube-controller-manager, etcd), built with go into ~/.cache/meshlab/upstream,
# outside the checkout; minutes the first time, reused after. As root it first installs gcc (SPIRE's
# SQLite needs cgo).
upstream: $(STAMP)
	@if [ "$$(id -u)" = 0 ] && ! command -v gcc >/dev/null; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null; fi
	$(VENV)/bin/meshlab upstream source istio.io/istio
	$(VENV)/bin/meshlab upstream source sigs.k8s.io/gateway-api
	$(VENV)/bin/meshlab upstream install

# make test fetches Istio's source when Go is there (a minute); it builds the programs only when
# MESHLAB_REQUIRE_UPSTREAM=1 (what .ci/run sets): otherwise the tests that run them skip, naming the command.
upstream-for-tests: $(STAMP)
	@if [ "$(MESHLAB_REQUIRE_UPSTREAM)" = 1 ]; then $(MAKE) --no-print-directory upstream; \
	elif command -v go >/dev/null; then $(VENV)/bin/meshlab upstream source istio.io/istio && $(VENV)/bin/meshlab upstream source sigs.k8s.io/gateway-api; \
	else echo "go not found: the upstream stage's tests will skip (meshlab doctor --stage upstream says the fix)"; fi

test: system-packages $(STAMP) upstream-for-tests
	$(PY) -m pytest --nbval tests notebooks labs

# The kind stage for real: creates (or reuses) the kind cluster "meshlab", installs Istio, runs the
# chapters' comparisons and deletes the cluster (MESHLAB_KEEP_CLUSTER=1 keeps it). A kind test that
# would skip fails here instead, with meshlab doctor's reason and fix.
test-kind: $(STAMP)
	$(VENV)/bin/meshlab doctor --stage kind
	MESHLAB_REQUIRE_KIND=1 $(PY) -m pytest -m kind tests

# Re-execute every chapter and lab from its jupytext source and store the outputs.
notebooks: $(STAMP)
	$(PY) -m meshlab.notebooks notebooks labs

# The static book: the stored chapters and the labs' student copies rendered by jupyter-book, widgets from their stored state.
book: $(STAMP)
	$(PY) -m meshlab.staticbook
