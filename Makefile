# resgo: the two commands a new user runs are `make demo` and `make test`.
GO ?= go
BIN := bin/resgo

.PHONY: deps demo quick build test vet bench clean

# deps installs the system packages resgo needs (oneDNN; PyTorch and
# torchvision from Debian as the reference for the parity tests; OpenBLAS so
# PyTorch's comparison runs are fair; Fashion-MNIST). It skips what is there.
deps:
	@bash scripts/install-deps.sh

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
test: deps
	$(GO) test -count=1 -timeout 25m ./...
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 10m ./...

bench:
	$(GO) test -run XXX -bench . -benchtime 3x ./backend/

clean:
	rm -rf bin
