# The two commands of the README: `make demo` (main job on the bundled sky sample) and `make test`.
PY := .venv/bin/python
STAMP := .venv/.installed

.PHONY: setup demo test
setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	python3 -m venv .venv
	PIP_CONSTRAINT=$(CURDIR)/constraints.txt .venv/bin/pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/run_ablation.py

# the import contract first (.importlinter: layers one way, the sky builder torch-free), then the suite on two
# workers (pytest-xdist; the tests of one file stay together, so their shared fixtures are built once)
test: $(STAMP)
	.venv/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n 2 --dist loadfile tests
