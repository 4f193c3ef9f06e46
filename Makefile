# Segue task runner. `make demo` and `make test` set everything up on a fresh machine (Python 3.11).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-pins.txt 2>/dev/null | sha1sum | cut -c1-12)
OUT ?= out
PYTEST_FLAGS ?=

.PHONY: all venv system-deps demo demo-audio demo-accompany test test-realtime test-unit test-slow test-integ test-all lint typecheck bench \
	bench-audio train-default train-audio-default clean-venv

all: test

$(STAMP):
	@command -v $(PYTHON) >/dev/null || { echo "Segue needs Python 3.11 ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: the CPU wheel; a bare `torch` would pull several GB of CUDA packages
	$(PY) -m pip install --quiet torch==2.13.0
	# musicgen (transformers, ~20 s) so the MusicGen backend's tests run in make test
	$(PY) -m pip install --quiet -e '.[engine,gui,dev,musicgen,server,transcribe,provenance]' -r requirements-pins.txt
	# tinysoundfont declares pyaudio, which does not build here and is not needed to render offline; basic-pitch
	# (audio -> MIDI) demands TensorFlow, which its ONNX model does not need (its runtime is the transcribe extra)
	$(PY) -m pip install --quiet --no-deps tinysoundfont basic-pitch==0.4.0
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

demo: venv
	$(VENV)/bin/segue continue examples/regions/pop_100bpm_4-4.mid --bars 8 --variants 4 --seed 7 --out $(OUT)/demo

# Accompaniment with the shipped accompany model: bass and piano under a 4-bar tune, 4 variants, placed at the
# region's start.
demo-accompany: venv
	$(VENV)/bin/segue continue examples/regions/melody_96bpm_4-4.mid --mode accompany --parts bass,piano \
	  --variants 4 --seed 7 --out $(OUT)/demo-accompany

# Audio continuation with the default audio engine, segue-concat (the region's own sound, recombined; the neural
# model is --model segue-audio-small): a 4-bar 48 kHz stereo region (rendered from the example MIDI, as a DAW would
# bounce it) continued by 8 bars in 4 variants.
demo-audio: venv
	test -f $(OUT)/demo-audio/region.wav || $(PY) -m engine.audio.example_region examples/regions/pop_100bpm_4-4.mid \
	  --rate 48000 --out $(OUT)/demo-audio/region.wav
	$(VENV)/bin/segue continue $(OUT)/demo-audio/region.wav --tempo 100 --meter 4/4 --bars 8 --variants 4 --seed 7 \
	  --model segue-concat --out $(OUT)/demo-audio

# Everything but the slow and GPU tests, the integration tests (real JACK, jack_midi_clock, headless Ardour, the
# segue bridge process) included: system-deps installs their Debian packages first.
test: venv system-deps
	@if command -v g++ >/dev/null && command -v cc >/dev/null && [ -f /usr/share/dpf/Makefile.plugins.mk ]; then \
	  $(MAKE) plugin; else echo "Segue Link (plugin/) not built: it needs g++ and dpf-source; its tests will skip"; fi
	$(PY) -m pytest -m "not slow and not gpu and not realtime" $(PYTEST_FLAGS)

# Capture through a real-time JACK graph (tests/integration/test_capture_jack*.py): takes from jack_midi_clock,
# jack_metro and headless Ardour, checked to the frame. They need CPU to spare: on a shared machine short of CPU,
# jackd itself drops cycles and the takes are (rightly) refused, so they are not part of `make test`.
test-realtime: venv system-deps
	$(PY) -m pytest -m realtime tests/integration $(PYTEST_FLAGS)

# The fast loop while developing: no real processes.
test-unit: venv
	$(PY) -m pytest -m "not slow and not integration and not gpu" $(PYTEST_FLAGS)

test-slow: venv
	$(PY) -m pytest -m "slow" $(PYTEST_FLAGS)

# Debian packages for the integration tests (real JACK dummy server, jack_midi_clock, headless Ardour 7, PortAudio
# for sounddevice, Lua 5.4 and node for the DAW scripts' tests; real recordings for the audio engine's tests:
# lmms-common's loops and hydrogen-drumkits' recorded hits); installed when missing and we are root, else the
# tests that need them skip with a hint.
SYSTEM_PACKAGES := jackd2 jack-midi-clock ardour libportaudio2 lua5.4 nodejs lmms-common hydrogen-drumkits g++ dpf-source jalv
system-deps:
	@missing=""; \
	command -v jackd >/dev/null || missing="$$missing jackd2"; \
	command -v jack_midi_clock >/dev/null || missing="$$missing jack-midi-clock"; \
	command -v ardour7-lua >/dev/null || missing="$$missing ardour"; \
	ldconfig -p | grep -q libportaudio.so.2 || missing="$$missing libportaudio2"; \
	command -v lua5.4 >/dev/null || missing="$$missing lua5.4"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	test -d /usr/share/lmms/samples/beats || missing="$$missing lmms-common"; \
	test -d /usr/share/hydrogen/data/drumkits || missing="$$missing hydrogen-drumkits"; \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	test -f /usr/share/dpf/Makefile.plugins.mk || missing="$$missing dpf-source"; \
	command -v jalv >/dev/null || missing="$$missing jalv"; \
	test -d /usr/share/games/openttd/baseset/openmsx || missing="$$missing openttd-openmsx"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "integration tests need:$$missing (apt-get install them as root); those tests will skip"; fi; \
	fi

# Only the integration tests (real processes).
test-integ: venv system-deps
	$(PY) -m pytest -m integration tests/integration $(PYTEST_FLAGS)

test-all: venv
	$(PY) -m pytest $(PYTEST_FLAGS)

# Style, types (mypy strict on engine, bridge, gui) and the layer contracts of pyproject.toml's [tool.importlinter]
# (imports point down, no cycle between siblings), then no import cycle between any two modules (tools/import_cycles.py;
# docs/architecture.md). CI runs it before the tests.
lint: venv
	$(VENV)/bin/ruff check engine bridge gui tests bench examples tools
	$(VENV)/bin/ruff format --check engine bridge gui tests bench examples tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m tools.import_cycles

# Every part's benchmark against its baseline, one table; JSON in bench/results/ (docs/benchmarks.md).
# About a quarter of an hour on 2 cores; `make bench BENCH_FLAGS=--quick` takes a few minutes.
BENCH_FLAGS ?=
bench: venv
	$(PY) bench/run_all.py $(BENCH_FLAGS)

# The shipped audio model against MusicGen's small architecture (random weights) on this CPU.
bench-audio: venv
	$(PY) bench/bench_audio.py

# How the shipped default model was made (see engine/models/segue-midi-small/MODEL_CARD.md).
train-default: venv
	$(PY) -m pip install --quiet 'music21>=9'
	$(PY) -m engine.symbolic.corpus --out data/corpus --max-minutes 24
	$(PY) -m engine.symbolic.train --data data/corpus --out runs/segue-midi-small --token-cache data/tokens \
	  --preset small --batch-size 8 --lr 1e-3 --warmup-steps 100 --max-minutes 52 --eval-every 150 \
	  --eval-windows 48 --threads 2 --seed 0
	$(PY) -m engine.symbolic.export --src runs/segue-midi-small --out runs/segue-midi-small-export \
	  --token-cache data/tokens --threads 2

# How the shipped audio model was made (see engine/models/segue-audio-small/MODEL_CARD.md); about 80 minutes on
# two CPU cores. Installs Debian's soundfonts when root (the data is rendered through FluidR3 GM and TimGM6mb).
train-audio-default: venv
	$(PY) -m pip install --quiet 'music21>=9'
	test -f /usr/share/sounds/sf2/FluidR3_GM.sf2 -a -f /usr/share/sounds/sf2/TimGM6mb.sf2 || { [ "$$(id -u)" = 0 ] && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  fluid-soundfont-gm timgm6mb-soundfont; }
	$(PY) -m engine.symbolic.corpus --out data/corpus --max-minutes 12
	$(PY) -m engine.audio.data --out data/audio --minutes 150 --max-piece-seconds 20 \
	  --soundfont /usr/share/sounds/sf2/TimGM6mb.sf2 --soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2
	$(PY) -m engine.audio.train_codec --data data/audio --out runs/audio-codec --preset small --max-minutes 35 \
	  --threads 1 --eval-every 250 --seed 0
	$(PY) -m engine.audio.train_prior --data data/audio --codec runs/audio-codec --out runs/audio-prior \
	  --preset small --block-size 512 --batch-size 8 --warmup-steps 50 --max-minutes 38 --eval-every 100 \
	  --eval-windows 16 --threads 1 --seed 0
	$(PY) -m engine.audio.export_model --codec runs/audio-codec --prior runs/audio-prior --data data/audio \
	  --out runs/segue-audio-small-export

# How the shipped accompany model was made (see engine/models/segue-accompany-small/MODEL_CARD.md): the multi-part
# works of data/corpus plus the ones it left out, then 44 minutes of fine-tuning segue-midi-small on one thread.
.PHONY: train-accompany-default
train-accompany-default: venv
	$(PY) -m pip install --quiet 'music21>=9'
	test -f data/corpus/manifest.json || $(PY) -m engine.symbolic.corpus --out data/corpus --max-minutes 24
	$(PY) -m engine.symbolic.accompany.data --out data/accompany/corpus --skip-done data/corpus/manifest.json
	SEGUE_THREADS=1 $(PY) -m engine.symbolic.accompany.train --data data/corpus --data data/accompany/corpus \
	  --out runs/segue-accompany-small --init segue-midi-small --batch-size 8 --lr 5e-4 --warmup-steps 50 \
	  --max-minutes 44 --eval-every 100 --threads 1 --seed 0
	$(PY) -m engine.symbolic.accompany.evaluate --src runs/segue-accompany-small \
	  --out runs/segue-accompany-small-export --data data/corpus --data data/accompany/corpus --chorales 16

# Segue Link, the plugin (plugin/README.md): CLAP, VST3 and LV2 bundles in plugin/build/bin. Needs g++ and DPF
# (Debian's dpf-source, or DPF_PATH=/path/to/DPF).
.PHONY: plugin
plugin:
	nice $(MAKE) -C plugin

clean-venv:
	rm -rf $(VENV)
