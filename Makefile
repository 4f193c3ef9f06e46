# Segue task runner. `make demo` and `make test` set everything up on a fresh machine (Python 3.11).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-pins.txt 2>/dev/null | sha1sum | cut -c1-12)
OUT ?= out
PYTEST_FLAGS ?=

.PHONY: all venv demo test test-slow test-integ test-all lint typecheck bench train-default clean-venv

all: test

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "Segue needs Python 3.11 ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel; a bare `torch` would pull several GB of CUDA packages
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[engine,dev]' -r requirements-pins.txt
	# tinysoundfont declares pyaudio, which does not build here and is not needed to render offline
	$(PY) -m pip install --quiet --no-deps tinysoundfont
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

demo: venv
	$(VENV)/bin/segue continue examples/regions/pop_100bpm_4-4.mid --bars 8 --variants 4 --seed 7 --out $(OUT)/demo

test: venv
	$(PY) -m pytest -m "not slow and not integration and not gpu" $(PYTEST_FLAGS)

test-slow: venv
	$(PY) -m pytest -m "slow" $(PYTEST_FLAGS)

# Real processes (a JACK dummy server, jack_midi_clock); installs the Debian packages when missing (needs root).
test-integ: venv
	@command -v jackd >/dev/null && command -v jack_midi_clock >/dev/null || { \
	  apt-get update && apt-get install -y --no-install-recommends jackd2 jack-midi-clock; }
	$(PY) -m pytest -m integration tests/integration $(PYTEST_FLAGS)

test-all: venv
	$(PY) -m pytest $(PYTEST_FLAGS)

lint: venv
	$(VENV)/bin/ruff check engine bridge gui tests bench examples
	$(VENV)/bin/mypy

bench: venv
	$(PY) bench/bench_symbolic.py

# How the shipped default model was made (see engine/models/segue-midi-small/MODEL_CARD.md).
train-default: venv
	$(PY) -m pip install --quiet 'music21>=9'
	$(PY) -m engine.symbolic.corpus --out data/corpus --max-minutes 24
	$(PY) -m engine.symbolic.train --data data/corpus --out runs/segue-midi-small --token-cache data/tokens \
	  --preset small --batch-size 8 --lr 1e-3 --warmup-steps 100 --max-minutes 52 --eval-every 150 \
	  --eval-windows 48 --threads 2 --seed 0
	$(PY) -m engine.symbolic.export --src runs/segue-midi-small --out runs/segue-midi-small-export \
	  --token-cache data/tokens --threads 2

clean-venv:
	rm -rf $(VENV)
