# Two entry points (see README): `make demo` and `make test`. Both create
# .venv with the exact versions of requirements/lock.txt on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests run in TEST_WORKERS processes (pytest-xdist), a test file per
# process at a time: much of a TensorFlow test is single-threaded Python
# (tracing, saving), so 2 processes keep 2 cores busy (the default TF
# suite: 19:06 wall instead of ~33 min in one process, measured).
# `make test TEST_WORKERS=0` runs them in this process.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest --durations=20 -n $(TEST_WORKERS) --dist loadfile
# The layer suite runs on every Keras backend; the rest needs TensorFlow.
BACKEND_SUITE := tests/layers tests/test_docstrings.py tests/inference_form_test.py

.PHONY: setup demo test test-all test-backends lock clean

$(STAMP): requirements/lock.txt setup.cfg pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

# The main job: fine-tune ECA-ResNet-18 on the embedded digits, offline.
demo: setup
	$(BIN)/keras-eca finetune --output runs/digits

test: setup
	KERAS_BACKEND=tensorflow $(PYTEST) -m "not slow"
	$(MAKE) --no-print-directory test-backends

test-backends: setup
	KERAS_BACKEND=jax $(PYTEST) -m "not slow" $(BACKEND_SUITE)
	KERAS_BACKEND=torch $(PYTEST) -m "not slow" $(BACKEND_SUITE)

test-all: setup
	KERAS_BACKEND=tensorflow $(PYTEST)
	KERAS_BACKEND=jax $(PYTEST) $(BACKEND_SUITE)
	KERAS_BACKEND=torch $(PYTEST) $(BACKEND_SUITE)

lock: setup
	$(BIN)/python -m pip freeze --all --exclude-editable | grep -v "^pip==" | sed 's/+cpu$$//' > requirements/lock.txt.new
	mv requirements/lock.txt.new requirements/lock.txt

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
