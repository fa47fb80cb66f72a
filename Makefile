# `make demo` and `make test` do all set-up on a fresh machine (they create .venv when missing).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_CLIP := tests/data/clips/bunny_160x80_132f.mp4
DEMO_OUT := demo-out

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# constraints.txt pins torch so pip never pulls a newer release with CUDA wheels
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The main job on the bundled clip (all 132 Bunny frames at 160×80): DS-NeRV at a 0.1M-parameter
# budget, 100 training + 25 RD epochs: 18 minutes on one core of this session's 2-core machine
# (README, Results). The summary is measured on frames decoded from the file.
demo: $(STAMP)
	mkdir -p $(DEMO_OUT)
	$(BIN)/nvc encode $(DEMO_CLIP) -o $(DEMO_OUT)/bunny.nvc -y --size 0.1M --epochs 100 --seed 0
	$(BIN)/nvc info $(DEMO_OUT)/bunny.nvc --no-tensors
	$(BIN)/nvc decode $(DEMO_OUT)/bunny.nvc -o $(DEMO_OUT)/bunny.y4m -y
	$(BIN)/nvc decode $(DEMO_OUT)/bunny.nvc -o $(DEMO_OUT)/bunny_48fps.mp4 --fps 2x -y

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bitstream

bench: $(STAMP)
	$(BIN)/python -m benchmarks tests/data/clips/bunny_160x80_132f.mp4 --quick --out bench-out

clean:
	rm -rf $(DEMO_OUT) .pytest_cache .ruff_cache .mypy_cache
