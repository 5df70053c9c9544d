# make search : create .venv when missing, install, run the quickstart search on digits
# make test   : create .venv when missing, install with test extras, run the whole test suite
# make bench  : the benchmark tables (docs/benchmarks.md)
# make gpu-check : every GPU check in one command (benchmarks/gpu_check.py; exits 0 without CUDA)
# make paper  : the paper's claims on real Fashion-MNIST, with seeds (search_spaces/paper.yaml)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-packages search paper train test bench gpu-check mutation clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

search: $(STAMP)
	$(PY) run_search.py search_spaces/quickstart.yaml --output runs/$$(date +%Y%m%d-%H%M%S)

paper: $(STAMP) system-packages
	out=runs/paper-$$(date +%Y%m%d-%H%M%S); \
	  $(PY) run_search.py search_spaces/paper.yaml --output $$out --quiet \
	  && $(VENV)/bin/spatialsearch claims $$out/paper

train: $(STAMP)
	$(VENV)/bin/spatialsearch train --datasets digits --labels 5 --input concatenate \
		--layers 150 100 50 --activation Sigmoid --proximity 1 --transport 10 --norm l2 \
		--epochs 50 --save runs/train-digits

# Debian packages the tests use, installed as root (else their tests are skipped): chromium
# drives the MLflow UI test (tests/test_ui.py); dataset-fashion-mnist is the real
# Fashion-MNIST (tests/test_fashion.py, the slow paper-effect test, search_spaces/fashion.yaml);
# postgresql is the tracking store for clusters (tests/search/tracking/, tests/postgres_server.py)
system-packages:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	  test -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz \
	    || missing="$$missing dataset-fashion-mnist"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $$missing >/dev/null; } \
	      || echo "could not install$$missing: their tests will be skipped"; \
	    else echo "not installed (needs root):$$missing; their tests will be skipped"; fi; \
	  fi

test: $(STAMP) system-packages
	$(PY) -m pytest -q

# mutation score per module (tests/mutations/score.py, docs/testing.md); long, not in CI
mutation: $(STAMP)
	$(PY) -m pip install --quiet mutmut==3.8.1
	$(PY) tests/mutations/score.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py

clean:
	rm -rf runs .pytest_cache mutants
