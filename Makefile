# Shortcuts over CMake and the scripts; scripts/build.sh builds the
# program and scripts/test.sh runs the tests.
#
#   make lambda              target/lambda/aws_{orchestrator,worker}.zip
#                            for x86_64
#   make lambda ARCH=arm64   the same zips for arm64 (AWS Graviton),
#                            cross-built with Debian's aarch64 compiler
#   make clean-lambda        remove target/lambda
#
# Both architectures write the same two file names; `unzip -z ZIP` shows
# which one a zip holds.
ARCH ?= x86_64

.PHONY: lambda clean-lambda

lambda:
	scripts/lambda-bundle.sh --arch $(ARCH)

clean-lambda:
	rm -rf target/lambda
