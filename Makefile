# Two commands set everything up on a fresh machine: `make test` and `make demo`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= dev,plot,ray,apps,faiss,speech,trackers,hf,lmeval,real

.PHONY: test lint demo install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -q -n 2 --durations=15

demo: $(STAMP)
	$(VENV)/bin/memzoo layers
	$(VENV)/bin/memzoo bench --suite quick --workers 2
	$(VENV)/bin/memzoo report --out results/report.html

clean:
	rm -rf $(VENV) results
