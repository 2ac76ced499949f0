# Two commands from a fresh clone: `make demo` opens the app, `make test` runs every test.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick bench env clean-env

demo: $(STAMP)
	$(VENV)/bin/workbench

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# The quick loop: everything but the tests that load the real embedded model.
test-quick: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) bench/startup.py

# Runs the installer again even when the environment looks up to date (after installing cmake, say).
env:
	VENV=$(VENV) sh scripts/install.sh
	touch $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	VENV=$(VENV) sh scripts/install.sh
	touch $(STAMP)

clean-env:
	rm -rf $(VENV)
