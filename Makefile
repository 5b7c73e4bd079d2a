# The two entry points of the README. Each installs what it needs and builds.
SWIFT ?= swift

.PHONY: deps demo test build

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build -c release --product tlora

demo: build
	@scripts/demo.sh

# `swift build` first: the CLI tests run the tlora executable.
test: deps
	$(SWIFT) build
	$(SWIFT) test
