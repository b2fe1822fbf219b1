# selfscale: `make minimize` runs the main job, `make test` runs every test. Both install what they need into .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# The torch to install when the venv has none. The default is the CPU build this project is tested with; on a GPU
# machine set TORCH=torch (or install your CUDA build into .venv first: an installed torch is kept).
TORCH  ?= torch==2.13.0
TASK   ?= sobel
PRESET ?= default
OUT    ?= runs/$(TASK)

.PHONY: install minimize lab test nbtest pytest sync bench
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml etc/ipython_kernel_config.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	install -D -m 644 etc/ipython_kernel_config.py $(VENV)/etc/ipython/ipython_kernel_config.py
	touch $@

minimize: install
	mkdir -p $(OUT)
	$(BIN)/papermill nbs/minimize.ipynb $(OUT)/minimize.ipynb -p task $(TASK) -p preset $(PRESET) -p out_dir $(OUT) \
	  --stdout-file /dev/stdout --no-progress-bar   # the run's own lines in the terminal, as they come

# the lab runs a copy in runs/ (the tracked notebook stays clean); root, the normal case in a container, is allowed
LAB    ?= runs/lab/lab.ipynb
lab: install
	mkdir -p $(dir $(LAB)) && (test -f $(LAB) || cp nbs/lab.ipynb $(LAB))
	$(BIN)/jupyter lab $(LAB) $(if $(filter 0,$(shell id -u)),--allow-root)

# the tests train the smoke preset with fewer polish rounds (tests/fast.ini): mechanics, not capacity; one torch thread
# per test process (two processes on two cores: more threads than cores makes a tiny net's step several times slower)
TESTS_ENV = SELFSCALE_SETTINGS=$(CURDIR)/tests/fast.ini OMP_NUM_THREADS=1
nbtest: install
	$(TESTS_ENV) $(BIN)/nbdev-test --n-workers 2

# two workers, a test file each (module fixtures stay in one process): 1.4× on 2 cores
pytest: install
	$(TESTS_ENV) $(BIN)/pytest -q -rs -n 2 --dist loadfile

# one after the other: each already runs two processes at once (with Ray trials and kernels beside them), and both
# suites together made it slower on 2 cores (8.8 minutes against 7.4)
test: nbtest pytest

# nbdev-export rewrites pyproject.toml unchanged; its old time is put back, or the next target would reinstall
sync: install
	touch -r pyproject.toml $(VENV)/.pyproject.time && $(BIN)/nbdev-export && $(BIN)/nbdev-clean
	git diff --quiet -- pyproject.toml && touch -r $(VENV)/.pyproject.time pyproject.toml || true
	git diff --exit-code -- nbs selfscale || (echo "notebooks and package out of sync: run nbdev-export and nbdev-clean, then commit" >&2; exit 1)

bench: install
	$(BIN)/python bench/bench.py $(ARGS)
