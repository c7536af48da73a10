# make run   - serve the dashboard on the committed checkpoints (creates .venv on first use)
#              CPU=1 make run: a CPU-only torch (~200 MB) instead of PyPI's CUDA build (several GB), same pins
# make test  - lint + the whole test suite (installs Debian's chromium for the browser tests if missing)
# make test-no-browser - the same without the Chromium tests
# make train - retrain the committed MNIST runs and the Fashion GAN (classifier first: the others' per-epoch
#              quality check uses it; 2-core CPU: ~11 min classifier, ~32 min VAE, 60 min MNIST GAN and 45 min
#              Fashion GAN (time budgets, both cores each); CUDA when present)
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(if $(wildcard ../shared/data),../shared/data,data)
export DATA_DIR

CPU_WHEELS := https://download.pytorch.org/whl/cpu
NO_BROWSER := make test needs Chromium for its browser tests and could not install it (no apt-get, or not root): \
install it (Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install --cask chromium) or set \
CHROMIUM=/path/to/chromium; or run everything else with: make test-no-browser

.PHONY: install run test test-no-browser lint browser train bench gpu-data clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(if $(CPU),$(PY) -m pip install -q --index-url $(CPU_WHEELS) $$(grep -E '^torch(vision)?==' requirements.txt))
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/streamlit run dashboard/app.py

browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	else echo "$(NO_BROWSER)" >&2; exit 1; fi

lint: install
	$(VENV)/bin/ruff check .

test: install browser lint
	$(PY) -m pytest -q

test-no-browser: install lint
	$(PY) -m pytest -q -m "not browser"

train: install
	$(PY) -m core train --model classifier --epochs 4 --data-dir $(DATA_DIR) --out checkpoints/mnist-classifier --overwrite
	$(PY) -m core train --model classifier --arch mlp --epochs 10 --precision fp32 --threads 1 --data-dir $(DATA_DIR) --out checkpoints/mnist-classifier-mlp --overwrite
	$(PY) -m core train --model vae --epochs 50 --lr-schedule cosine --data-dir $(DATA_DIR) --out checkpoints/mnist-vae --overwrite
	$(PY) -m core train --model gan --latent-modes 20 --epochs 150 --lr-schedule cosine --time-budget 6600 --threads 2 --keep-best --data-dir $(DATA_DIR) --out checkpoints/mnist-gan --overwrite
	$(PY) -m core train --model gan --dataset fashion-mnist --latent-modes 20 --epochs 100 --lr-schedule cosine --time-budget 6600 --threads 1 --keep-best --data-dir $(DATA_DIR) --out checkpoints/fashion-mnist-gan --overwrite

bench: install browser
	$(PY) bench/train_speed.py --data-dir $(DATA_DIR)
	$(PY) -m bench.dashboard_speed
	$(PY) bench/eval_speed.py --data-dir $(DATA_DIR)
	$(PY) bench/retrain_speed.py

# gzipped MNIST in .gpu/ (git-ignored) for bench/gpu_session.sh, which a lent GPU machine runs (issue 9)
gpu-data:
	mkdir -p .gpu/MNIST/raw
	for f in $(DATA_DIR)/MNIST/raw/*-ubyte; do gzip -c $$f > .gpu/MNIST/raw/$$(basename $$f).gz; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
