# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
# Both set everything up first, idempotently.

VENV      := .venv
PYTHON    := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
BUILD     := $(abspath build)
EMULATORS := $(BUILD)/.emulators-installed
TEST_TOOLS := $(BUILD)/.test-tools-installed
CA_PEM    := $(BUILD)/pki/ca.pem
STM32_ELF := $(BUILD)/firmware/stm32/netduinoplus2/atmodem-https.elf

.PHONY: setup setup-emulators setup-test-tools firmware demo docs test bench soak fuzz robot-parallel clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/setup-host
	./scripts/setup-host
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# QEMU 10, the ARM and AVR toolchains, simavr and Debian's Arduino core.
setup-emulators: $(EMULATORS)

$(EMULATORS): scripts/setup-host
	./scripts/setup-host --emulators
	mkdir -p $(BUILD) && touch $@

# tshark and headless Chromium, which the capture and diagram tests drive.
setup-test-tools: $(TEST_TOOLS)

$(TEST_TOOLS): scripts/setup-host
	./scripts/setup-host --test-tools
	mkdir -p $(BUILD) && touch $@

# The lab's root CA: the firmware embeds it, the lab's HTTPS server presents a certificate it signed.
$(CA_PEM): | $(STAMP)
	$(PYTHON) -c 'import sys; from atmodem.lab import LabPki; LabPki(sys.argv[1])' $(BUILD)/pki

# The sub-makes know their own sources; they rebuild only what changed.
firmware: $(EMULATORS) $(CA_PEM)
	$(MAKE) --no-print-directory -C platforms/simavr BUILD=$(BUILD)/bin
	$(MAKE) --no-print-directory -C firmware/stm32 BUILD=$(BUILD)/firmware/stm32 CA_PEM=$(CA_PEM)
	$(MAKE) --no-print-directory -C firmware/arduino BUILD=$(BUILD)/firmware/arduino

# The main job: the STM32 HTTPS client in QEMU fetches a page over TLS through the modem.
# It leaves the session's trace, packet capture and TLS key log in build/demo.
DEMO := $(BUILD)/demo
demo: setup firmware
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(VENV)/bin/atmodem run --machine netduinoplus2 --firmware $(STM32_ELF) --lab $(BUILD)/pki \
	    --expect '^result: OK' --fail '^result: FAIL' --timeout 120 --transcript 30 \
	    --trace $(DEMO)/session.trace --pcap $(DEMO)/modem.pcapng --keylog $(DEMO)/keys.log

# The Robot library's keyword documentation (libdoc) and the plugin author's guide, in build/docs.
docs: setup
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) $(PYTHON) docs/build.py $(BUILD)/docs

test: setup firmware setup-test-tools docs
	$(PYTHON) -m pytest

# Every benchmark in one table, each figure next to a raw-Python baseline (about 30 s).
bench: setup
	$(PYTHON) bench/run.py

# 100 MB through five TCP and TLS links in both receive modes with random faults (about a minute).
soak: setup
	$(PYTHON) bench/soak.py

# The engine's stateful fuzz target for 100,000 steps (about four minutes).
fuzz: setup
	$(PYTHON) bench/fuzz.py

# The Robot suites side by side under pabot: each suite's modem, lab servers, state folder and
# output are its own. pabot's lock server (fixed port 8270) stays off; no suite takes a lock.
# One CI runner of three: make robot-parallel ROBOT_ARGS='--shard 2/3'
ROBOT_PROCESSES ?= 2
ROBOT_ARGS      ?=
robot-parallel: setup firmware
	mkdir -p $(BUILD)/robot/parallel
	cd $(BUILD)/robot/parallel && $(abspath $(VENV))/bin/pabot --processes $(ROBOT_PROCESSES) --no-pabotlib \
	    --command $(abspath $(PYTHON)) -m robot --end-command --outputdir . $(ROBOT_ARGS) $(CURDIR)/robot/suites

clean:
	rm -rf $(VENV) build *.egg-info peripherals/*.egg-info
