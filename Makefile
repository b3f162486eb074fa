# resgo: the two commands a new user runs are `make demo` and `make test`.
GO ?= go
BIN := bin/resgo
# Go 1.26 as the Debian 12 machines here have it.
export PATH := $(PATH):/usr/local/go/bin

.PHONY: deps test-deps demo quick build build-mpi test test-isa fuzz vet bench clean

# deps installs the system packages resgo and its demo need (oneDNN,
# Fashion-MNIST); test-deps adds PyTorch and torchvision from Debian, the
# reference of the parity tests, and OpenBLAS. Both skip what is there.
deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh test

build:
	$(GO) build -o $(BIN) ./cmd/resgo

# build-mpi builds resgo with data-parallel training over Open MPI
# (mpirun -np N bin/resgo-mpi train ...); needs libopenmpi-dev.
build-mpi:
	$(GO) build -tags mpi -o bin/resgo-mpi ./cmd/resgo

# demo: set up everything and run resgo's main job. (OpenMP's default wait
# policy, spinning, trains ResNet-20 about 10% faster here than
# OMP_WAIT_POLICY=passive, data loader included.)
demo: deps build
	./$(BIN) demo

quick: deps build
	./$(BIN) demo --quick

vet:
	$(GO) vet ./...
	$(GO) vet -tags mpi ./dist/ ./cmd/resgo/
	CGO_ENABLED=0 $(GO) vet ./...

# test runs the whole suite with oneDNN, then the four experiments in
# their --quick form on their own (about two minutes), then the pure-Go build
# (CGO_ENABLED=0), then oneDNN's own tests and the PyTorch parity tests again
# with oneDNN capped at the lower CPU classes (test-isa).
test: test-deps
	$(GO) test -count=1 -timeout 25m ./...
	RESGO_EXPERIMENT_QUICK=1 $(GO) test -count=1 -timeout 10m -run '^TestExperiments$$' ./experiment/
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 10m ./...
	$(MAKE) --no-print-directory test-isa
	$(MAKE) --no-print-directory fuzz

# test-isa runs backend/dnnl and models/resnet with oneDNN's kernels capped
# at AVX2 (most servers and laptops) and at SSE4.1 (the oldest x86-64 class
# oneDNN supports), whatever this CPU has: DNNL_MAX_CPU_ISA makes oneDNN,
# and PyTorch's convolutions in the parity fixtures, dispatch as on such a CPU.
test-isa:
	@for isa in AVX2 SSE41; do \
		echo "DNNL_MAX_CPU_ISA=$$isa"; \
		DNNL_MAX_CPU_ISA=$$isa $(GO) test -count=1 -timeout 10m ./backend/dnnl/ ./models/resnet/ || exit 1; \
	done

# fuzz runs every fuzz target (the readers of untrusted bytes) for FUZZTIME
# each; their seed corpora also run in every plain `go test`. A failing input
# is saved under the package's testdata/fuzz/ and replayed by go test.
# -fuzzminimizetime 0: go test shrinks each new interesting input, and a
# shrink still running when FUZZTIME ends fails the run with "context
# deadline exceeded" (seen on FuzzDecodeImage); failing inputs are still
# reported and saved, only not shrunk.
# FUZZTIME is a count of inputs, not a duration: with a duration, Go 1.26's
# fuzzing coordinator can report its own deadline as a failure, "context
# deadline exceeded" with no failing input (golang/go#75804, fixed in Go
# 1.27; seen here on FuzzResumeState). 30000 inputs take 2 to 20 s a target
# on a 2-core EPYC (FuzzFileLists is the slowest, about 1,500 a second).
FUZZTIME ?= 30000x
FUZZ_TARGETS := \
	checkpoint:FuzzDecodePTH checkpoint:FuzzDecodePTHZip checkpoint:FuzzDecodePTHLegacy \
	checkpoint:FuzzDecodePTHTar checkpoint:FuzzUnpickle checkpoint:FuzzDecodeSafetensors \
	modelfile:FuzzDecode data:FuzzReadIDX data:FuzzDecodeImage data:FuzzFileLists serve:FuzzUpload train:FuzzResumeState

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz ./$$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0 -parallel 1 ./$$pkg/ || exit 1; \
	done

bench:
	$(GO) test -run XXX -bench . -benchtime 3x ./backend/

clean:
	rm -rf bin
