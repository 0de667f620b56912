# The README's commands. Each installs what is missing first (scripts/install_deps.sh is idempotent and fast when
# everything is there).
BUILD ?= build
JOBS ?= $(shell nproc)
PY := /usr/bin/python3
MODELS ?= models
DEMO_MODEL ?= resnet18
DEMO_PARTS ?= 2
CTEST_ARGS ?=
# CUDA 13's runtime in the CUDA toolkit's standard prefix: where it is, `make test` installs ONNX Runtime's CUDA
# provider (179 MB from npm, once; cached) so that the gpu-lib test runs; elsewhere that test skips.
CUDA_RUNTIME := $(firstword $(wildcard /usr/local/cuda*/lib64/libcudart.so.13))

.PHONY: fuzz fuzz-ci all deps deps-models build demo test models models-large models-xl bench soak sanitize clean gpu gpu-check

all: build

deps:
	@scripts/install_deps.sh

deps-models:
	@scripts/install_deps.sh --models

# ONNX Runtime's CUDA provider beside the core (third_party/onnxruntime/lib).
gpu:
	@scripts/install_deps.sh --gpu

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Exports the seed's three models with random weights (mobilenet_v2, resnet18, gpt2) into $(MODELS)/.
models: deps-models
	@$(PY) scripts/export_models.py --out $(MODELS)

# A GPT-2-large-shaped decoder (3.2 GiB, external data): the case onnxpipe exists for. Not part of `make test`.
models-large: deps-models
	@$(PY) scripts/export_models.py --out $(MODELS) --only gpt2_large

# A GPT-2-XL-shaped decoder (48 blocks, d=1600, 1.56 B parameters, 6.5 GB of external data), built without torch,
# under 1 GB of memory. Not part of `make test`; docs/results/gpt2_xl.md splits and runs it.
models-xl: deps-models
	@$(PY) scripts/export_models.py --out $(MODELS) --only gpt2_xl

demo: deps-models build
	@scripts/demo.sh $(BUILD)/onnxpipe $(MODELS) $(DEMO_MODEL) $(DEMO_PARTS)

test: deps-models build
	$(if $(CUDA_RUNTIME),@scripts/install_deps.sh --gpu)
	@$(PY) scripts/export_models.py --out $(MODELS) --quiet
	cd $(BUILD) && ONNXPIPE_MODELS=$(abspath $(MODELS)) ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

bench: deps-models build
	@$(PY) scripts/export_models.py --out $(MODELS) --quiet
	ONNXPIPE_MODELS=$(abspath $(MODELS)) $(BUILD)/bench/split_bench
	ONNXPIPE_MODELS=$(abspath $(MODELS)) $(BUILD)/bench/pipeline_bench
	ONNXPIPE_MODELS=$(abspath $(MODELS)) $(BUILD)/bench/balance_bench

# The soak run's long form: 100k requests, a fault every 1000 (tests/support/soak.h); SOAK_REQUESTS to change.
SOAK_REQUESTS ?= 100000
soak: build
	$(BUILD)/bench/soak_bench --requests $(SOAK_REQUESTS)

# On a machine with a GPU: the gpu tests with ONNXPIPE_REQUIRE_CUDA=1, then mobilenet_v2 and GPT-2 as 2-stage
# pipelines on cuda:0,cuda:0 against the CPU (scripts/gpu_check.sh; its header says how to run it from a bundle).
gpu-check: deps-models build
	@scripts/gpu_check.sh --build $(BUILD) --models $(MODELS)

# The runtime and pipeline tests under ThreadSanitizer and AddressSanitizer (ORT itself is not instrumented).
SANITIZED_TESTS := runtime_test pipeline_test pipeline_soak_test
sanitize: deps
	@for kind in thread address; do \
	  dir=$(BUILD)-$$kind; \
	  cmake -S . -B $$dir -DONNXPIPE_SANITIZE=$$kind -DCMAKE_BUILD_TYPE=Debug >/dev/null && \
	  cmake --build $$dir -j $(JOBS) --target $(SANITIZED_TESTS) && \
	  (cd $$dir && TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp" LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp" \
	   ctest --output-on-failure -L unit -R 'Pipeline|Runtime') || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(BUILD)-thread $(BUILD)-address $(FUZZ_BUILD)

# libFuzzer targets under ASan + UBSan in their own build dir; each runs FUZZ_SECONDS on its corpus (seeded from the
# test data) after replaying fuzz/regressions/. fuzz-ci is CI's short form.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CXX ?= clang++-14
fuzz:
	@scripts/install_deps.sh --fuzz
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DONNXPIPE_BUILD_FUZZ=ON -DONNXPIPE_BUILD_TESTS=OFF \
	  -DONNXPIPE_BUILD_PYTHON=OFF \
	  -DONNXPIPE_BUILD_BENCH=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_targets
	fuzz/seed_corpus.sh $(FUZZ_BUILD)
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BUILD)

fuzz-ci:
	$(MAKE) fuzz FUZZ_SECONDS=10
