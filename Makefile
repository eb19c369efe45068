# nodeboot: build, demo and test. Keep this file thin: anything longer than a
# line lives in hack/*.sh. `make help` lists the targets.

SHELL := /usr/bin/env bash
GO ?= go
PKG := github.com/nodeboot/nodeboot
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X $(PKG)/internal/cli/version.version=$(VERSION)
# Extra flags for go test, e.g. make test TESTFLAGS='-race -run Exec'
TESTFLAGS ?=

.DEFAULT_GOAL := build

################################################################################
##@ Build
################################################################################

.PHONY: build
build: ## Build bin/nodeboot (static, stripped, with VERSION stamped in)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/nodeboot ./cmd/nodeboot

# Extra flags for `nodeboot up`, e.g. make up UP_FLAGS='--smoke --timeout 10m'
UP_FLAGS ?=

.PHONY: up
up: build ## The main job (root): build, get k3s if missing (tested release, sha256-checked), then nodeboot up --wait
	hack/up.sh bin/nodeboot $(UP_FLAGS)

.PHONY: demo
demo: build ## Build, then cat /proc/sys/kernel/panic redirected to a file in a temp dir
	hack/demo.sh bin/nodeboot

################################################################################
##@ Test
################################################################################

.PHONY: test-all
test-all: ## Everything CI runs: test, then e2e-deps + e2e, then the real-consumer tests (root; 18-25 min on 2 idle cores, 38 on busy ones)
	TESTFLAGS="$(TESTFLAGS)" hack/test.sh
	GO="$(GO)" hack/e2e.sh
	GO="$(GO)" hack/e2e-consumers.sh

.PHONY: test
test: ## The main module: install test deps, lint, arm64 build + interceptor unit tests under qemu, go test ./... (as root for all tests; ~3 min)
	TESTFLAGS="$(TESTFLAGS)" hack/test.sh

.PHONY: unit
unit: ## Unit tests only (-short -tags=nointegration): nothing traces (interceptor.Start refuses in that build)
	$(GO) test -count=1 -short -tags=nointegration $(TESTFLAGS) ./...

.PHONY: integration
integration: ## Only the TestIntegration* tests: every test that traces (most need root)
	$(GO) test -count=1 -run '^TestIntegration' $(TESTFLAGS) ./...

.PHONY: test-arm64
test-arm64: ## Every unit test built for linux/arm64, run under qemu-user (no tracing there; ~2 min of CPU cold)
	GO="$(GO)" TESTFLAGS="$(TESTFLAGS)" hack/test-arm64.sh

.PHONY: bench
bench: ## Benchmarks in ./bench, one iteration each
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m $(TESTFLAGS) ./bench/...

.PHONY: lint
lint: ## gofmt, then go vet and go build for linux/amd64 and linux/arm64
	hack/lint.sh

################################################################################
##@ End-to-end (e2e/, a separate Go module; root only)
################################################################################

.PHONY: e2e-deps
e2e-deps: ## Install containerd, runc, CNI plugins, etcd (apt) and build kube-apiserver + kubelet + kube-controller-manager into e2e/bin
	GO="$(GO)" hack/e2e-deps.sh

.PHONY: e2e
e2e: ## Run the e2e suite (make e2e-deps first): real kubelet natively, in the sandbox, under nodeboot
	GO="$(GO)" TESTFLAGS="$(TESTFLAGS)" hack/e2e.sh --no-deps

################################################################################
##@ Other
################################################################################

.PHONY: clean
clean: ## Remove build and coverage output
	rm -rf bin e2e/bin coverage.out coverage.html

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make TARGET [TESTFLAGS=...] [VERSION=...]\n"} \
		/^##@ / {printf "\n%s\n", substr($$0, 5)} \
		/^[a-zA-Z0-9_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
