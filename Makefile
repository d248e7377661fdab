# The README's two commands. Everything else is plain CMake (see CMakePresets.json).
.PHONY: demo test bootstrap build clean

JOBS ?= $(shell nproc)

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	@cmake --preset default >/dev/null
	@cmake --build --preset default -j $(JOBS)

demo: build
	@bash scripts/demo.sh

test: bootstrap
	@bash scripts/run-tests.sh

clean:
	rm -rf build
