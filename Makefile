# resgo: the two commands a new user runs are `make demo` and `make test`.
GO ?= go
BIN := bin/resgo
# Go 1.26 as the Debian 12 machines here have it.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: deps test-deps demo quick build test vet bench clean

# deps installs the system packages resgo and its demo need (oneDNN,
# Fashion-MNIST); test-deps adds PyTorch and torchvision from Debian, the
# reference of the parity tests, and OpenBLAS. Both skip what is there.
deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh test

build:
	$(GO) build -o $(BIN) ./cmd/resgo

# demo: set up everything and run resgo's main job. (OpenMP's default wait
# policy, spinning, trains ResNet-20 about 10% faster here than
# OMP_WAIT_POLICY=passive, data loader included.)
demo: deps build
	./$(BIN) demo

quick: deps build
	./$(BIN) demo --quick

vet:
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...

# test runs the whole suite with oneDNN, then the pure-Go build (CGO_ENABLED=0).
test: test-deps
	$(GO) test -count=1 -timeout 25m ./...
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 10m ./...

bench:
	$(GO) test -run XXX -bench . -benchtime 3x ./backend/

clean:
	rm -rf bin
