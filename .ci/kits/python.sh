#!/usr/bin/env bash
# The Python kit (examples/python-destination) in CI: its unit tests under plain CPython, its
# component built with the kit's own command and default flags, then the conformance suite on
# that component (`audience-host plugin test`): every check must pass. Run by .ci/run after
# the cargo tests; a developer can run it alone:
#
#   .ci/kits/python.sh                               # builds target/debug/audience-host if needed
#   KIT_HOST_BINARY=target/release/audience-host .ci/kits/python.sh
#
# Needs python3 (3.10+, with venv) and network access to PyPI the first time: componentize-py,
# pinned in examples/python-destination/requirements.txt, goes into a venv under
# target/kits/python/.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -n "${KIT_HOST_BINARY:-}" ]; then
    BIN=$KIT_HOST_BINARY
else
    cargo build -p audience-host
    BIN=target/debug/audience-host
fi

export KIT_WORK=$PWD/target/kits/python
export KIT_OUT=$KIT_WORK/python-destination.wasm
kit=examples/python-destination

echo "== Python kit: unit tests"
"$kit/build.sh" test
echo "== Python kit: component"
rm -f "$KIT_OUT"
"$kit/build.sh" build
echo "== Python kit: conformance suite"
"$BIN" plugin inspect "$KIT_OUT"
"$BIN" plugin test "$KIT_OUT"
