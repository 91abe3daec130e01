# groovebox — every target sets up what it needs.
#   make demo      render the example keyboard performance into a drum part
#   make test      the import contracts (lint-imports), then the whole test suite (installs jackd2,
#                  chromium, fluidsynth where missing and root)
#   make bench     benchmarks, printed as percentiles and ratios measured in one run
#   make live-under-load  the live tests 20 times in a row beside two CPU hogs (slow: ~1 h)
#   make run       the live service in the foreground with a desktop config
#   make train     train the model on GMD (long: run it in the background, see models/README.md)
#   make evaluate  metrics of the shipped model on the GMD test split, and the drummer playing
#                  along to keyboard comping next to GMD drummers (validation split) and to
#                  piano parts as a pianist records them
#   make reviews   every musician review's keyboard parts rendered again (seeds 1, 2), against
#                  training/review_parts/renders.txt: what moved, and the reviewers' scores (~7 min)
#   make report    out/report/index.html: features, heat-maps, latent map, listening set (about 7 min)
#   make sweep     Optuna study of the architecture (hours: run it in the background), then its export
#   make quant-check  int8 vs fp32 on four CPUs (x86 with/without VNNI, Cortex-A72/A76 under qemu; slow)
#   make install   install the box on a Raspberry Pi (root)
#   make image     build an SD-card image (make image-test boots it); make flash DEVICE=/dev/sdX writes it

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
GMD_DIR ?= ../shared/data/gmd
export GMD_DIR

.PHONY: demo test live-under-load bench run train evaluate reviews quant-check report sweep install image image-test flash apt-test apt-report clean help

help:
	@sed -n '1,18p' Makefile

# The runtime set (what the Pi gets) and the development set (tests, training).
$(VENV)/.runtime: pyproject.toml
	@# Debian's own python3 makes a venv only with python3-venv (its ensurepip)
	@$(PYTHON) -m ensurepip --version >/dev/null 2>&1 || bash scripts/apt-install.sh python3-venv:/usr/share/doc/python3-venv
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.runtime
	$(VENV)/bin/pip install -q -e '.[dev,train]'
	touch $@

# Debian packages the tests need: a real JACK server (dummy driver), systemd-analyze, and the
# tools of make image's last step (vfat, mtools, sfdisk, ext4) for its fast check.
apt-test:
	@bash scripts/apt-install.sh jackd2:jackd systemd:systemd-analyze dosfstools:mkfs.vfat mtools:mcopy \
		fdisk:sfdisk e2fsprogs:debugfs

demo: $(VENV)/.runtime
	$(VENV)/bin/groovebox render examples/keyboard_phrase.mid -o out/demo_drums.mid --passes 2 --seed 7

# Debian packages of the report and its test: headless Chromium, FluidSynth, a General MIDI SoundFont.
apt-report:
	@bash scripts/apt-install.sh chromium:chromium fluidsynth:fluidsynth fluid-soundfont-gm:/usr/share/sounds/sf2/FluidR3_GM.sf2

test: $(VENV)/.dev apt-test apt-report
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

live-under-load: $(VENV)/.dev apt-test
	PY=$(PY) sh scripts/live_under_load.sh

bench: $(VENV)/.dev apt-test
	$(PY) -m benchmarks

# run: ALSA where /dev/snd/seq is, else JACK (a running server, or one it starts); see scripts/run.sh.
run: $(VENV)/.runtime
	@VENV=$(VENV) bash scripts/run.sh

# Stages (models/README.md): the base run on drummers' grooves; a fine-tune that also hears
# simulated hands and keys; a short one that learns expression from drummers' grooves only; a
# soup 0.3 · base + 0.7 · fine-tuned; a second round with more hands (again hits, then expression);
# the shipped weights 0.5 · soup + 0.5 · second round. Each training stage resumes when run again.
HUMAN := --p-hands 0.35 --p-keys 0.1 --select-hands 0.5 --warmup-epochs 0 --threads 1
train: $(VENV)/.dev
	$(PY) -m training.train --out training/runs/groove-vae-base
	$(PY) -m training.train --out training/runs/groove-vae-human --init training/runs/groove-vae-base/best.pt $(HUMAN) --epochs 4 --lr 3e-4
	$(PY) -m training.train --out training/runs/groove-vae-expression --init training/runs/groove-vae-human/best.pt $(HUMAN) --epochs 2 --lr 2e-4 --people-expression 0
	$(PY) -m training.soup training/runs/groove-vae-base/best.pt training/runs/groove-vae-expression/best.pt 0.7 training/runs/groove-vae-soup/best.pt
	$(PY) -m training.train --out training/runs/groove-vae-hands --init training/runs/groove-vae-soup/best.pt --p-hands 0.5 --p-keys 0.1 --select-hands 0.5 --warmup-epochs 0 --threads 1 --epochs 10 --lr 3e-4
	$(PY) -m training.train --out training/runs/groove-vae-hands-expression --init training/runs/groove-vae-hands/best.pt --p-hands 0.6 --p-keys 0.1 --select-hands 0.7 --warmup-epochs 0 --threads 1 --epochs 8 --lr 2e-4 --people-expression 0
	$(PY) -m training.soup training/runs/groove-vae-soup/best.pt training/runs/groove-vae-hands-expression/best.pt 0.5 training/runs/groove-vae/best.pt
	$(PY) -m training.export training/runs/groove-vae/best.pt models/groove-vae
	$(PY) -m training.calibrate models/groove-vae
	$(PY) -m training.prior models/groove-vae
	$(PY) -m training.styles models/groove-vae --write
	$(PY) -m training.evaluate models/groove-vae
	$(PY) -m training.human_eval models/groove-vae --split test --write

evaluate: $(VENV)/.dev
	$(PY) -m training.evaluate models/groove-vae
	$(PY) -m training.playalong models/groove-vae
	$(PY) -m training.pianists models/groove-vae

# reviews: REVIEWS_ARGS="--write" records the renders (after a change the diff shows what moved);
# REVIEWS_ARGS="review-s31" renders one review.
reviews: $(VENV)/.dev
	$(PY) -m training.reviews $(REVIEWS_ARGS)

report: $(VENV)/.dev apt-report
	$(PY) -m training.report models/groove-vae --out out/report

# sweep: resumes its study (training/runs/sweep/study.db); SWEEP_ARGS="--storage URL --trials N --hours H".
# Its export writes training/recipe.json (make train's architecture) and the table in models/README.md.
sweep: $(VENV)/.dev
	$(PY) -m training.sweep run $(SWEEP_ARGS) && $(PY) -m training.sweep export $(SWEEP_ARGS)

# quant-check: the int8 recipe on the Pi's CPUs, under qemu-user (tens of minutes; cached in build/quant).
quant-check: $(VENV)/.dev
	$(PY) -m training.quant_check models/groove-vae --card

# install: on the Pi, as root. DRY_RUN=1 prints the steps; DESTDIR=DIR stages the files only.
install:
	DESTDIR="$(DESTDIR)" DRY_RUN="$(DRY_RUN)" bash scripts/install.sh

# image: Debian bookworm arm64 packages + PyPI wheels -> $(IMG) (root; cached in build/cache).
IMG ?= build/groovebox.img
IMAGE_TOOLS := mmdebstrap:mmdebstrap arch-test:arch-test qemu-user-static:qemu-aarch64-static binfmt-support:update-binfmts \
	dosfstools:mkfs.vfat mtools:mcopy fdisk:sfdisk e2fsprogs:mkfs.ext4
# A dry run builds nothing, the venv neither, and says what a real build would still need.
image: $(if $(filter 1,$(DRY_RUN)),,$(VENV)/.runtime)
	@[ -n "$(filter 1,$(DRY_RUN))" ] || bash scripts/apt-install.sh $(IMAGE_TOOLS)
	IMG="$(IMG)" DRY_RUN="$(DRY_RUN)" PIP="$(abspath $(VENV))/bin/pip" bash image/build.sh

# image-test: boot $(IMG) in qemu-system-aarch64 and play it over ALSA inside (slow: minutes).
image-test:
	@bash scripts/apt-install.sh qemu-system-arm:qemu-system-aarch64 mtools:mcopy
	IMG="$(IMG)" $(PYTHON) image/image_test.py

# flash: DEVICE=/dev/sdX (a removable card, asked to confirm; YES=1 skips the question).
flash:
	DEVICE="$(DEVICE)" IMG="$(IMG)" YES="$(YES)" DRY_RUN="$(DRY_RUN)" bash image/flash.sh

clean:
	rm -rf out .pytest_cache build *.egg-info
