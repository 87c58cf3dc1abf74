# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
# Both set everything up first, idempotently.

VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
RUN_DIR := .run

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/setup-host
	./scripts/setup-host
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# Until the emulator demo exists: a modem on a pseudo-terminal, ready for any terminal program.
demo: setup
	mkdir -p $(RUN_DIR)
	$(VENV)/bin/atmodem serve --pty $(RUN_DIR)/modem --state-dir $(RUN_DIR)/state

test: setup
	$(PYTHON) -m pytest

bench: setup
	$(PYTHON) bench/engine.py
	$(PYTHON) bench/throughput.py

clean:
	rm -rf $(VENV) $(RUN_DIR) build *.egg-info peripherals/*.egg-info
