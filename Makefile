# The two commands a person needs: `make lab` and `make test`.
# Both create (or update) .venv from this repository's own files.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# An exact torch pin: on the development machines this is a CPU wheel on disk;
# a looser spec would download a multi-GB CUDA build. pyproject keeps a range.
TORCH  ?= torch==2.13.0

.PHONY: lab test test-fast demo bench browser clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[lab,test]"
	touch $(STAMP)

# JupyterLab refuses to start as root unless told; containers often run as root.
lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

# Chromium for the real-browser test: Debian's package (no browser can be
# downloaded at run time). Installed when missing and we are root; otherwise
# the browser test is skipped outside CI and fails inside CI.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium"; \
	  else echo "note: chromium not found; the browser test will be skipped"; fi; }

# Notebooks run at their quick scale (ENCCHAIN_QUICK=1), with runs and data in a
# fresh temporary folder so that runs left by older code can never be reused.
# nbval runs in lax mode: only cells marked NBVAL_CHECK_OUTPUT (outputs that do
# not depend on scale) are compared with the stored outputs; all cells must run.
test: $(STAMP) browser
	@scratch=$$(mktemp -d); \
	ENCCHAIN_QUICK=1 ENCCHAIN_RUNS=$$scratch/runs ENCCHAIN_DATA=$$scratch/data MPLBACKEND=Agg \
	  $(BIN)/python -m pytest -q --nbval-lax --durations=15 tests notebooks; \
	status=$$?; rm -rf $$scratch; exit $$status

# Library tests only (no notebooks, no browser): the quick inner loop.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser" tests

demo: $(STAMP)
	$(BIN)/encchain demo --out data/runs/demo

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_grids.py
	$(BIN)/python benchmarks/bench_idx.py

clean-venv:
	rm -rf $(VENV)
