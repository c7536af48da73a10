# make run   - serve the dashboard on the committed checkpoints (creates .venv on first use)
# make test  - lint + the whole test suite (installs Debian's chromium for the browser tests if missing)
# make train - retrain the committed MNIST runs (2-core CPU: ~25 min VAE, ~50 min GAN; CUDA when present)
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(if $(wildcard ../shared/data),../shared/data,data)
export DATA_DIR

.PHONY: install run test lint browser train bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/streamlit run dashboard/app.py

browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff check .

test: install browser lint
	$(PY) -m pytest -q

train: install
	$(PY) -m core train --model vae --epochs 50 --lr-schedule cosine --data-dir $(DATA_DIR) --out checkpoints/mnist-vae --overwrite
	$(PY) -m core train --model gan --epochs 20 --data-dir $(DATA_DIR) --out checkpoints/mnist-gan --overwrite
	$(PY) -m core train --model classifier --epochs 4 --data-dir $(DATA_DIR) --out checkpoints/mnist-classifier --overwrite

bench: install browser
	$(PY) bench/train_speed.py --data-dir $(DATA_DIR)
	$(PY) bench/dashboard_speed.py
	$(PY) bench/eval_speed.py --data-dir $(DATA_DIR)
	$(PY) bench/retrain_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
