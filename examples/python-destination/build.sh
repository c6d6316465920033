#!/usr/bin/env sh
# Build the Python destination into a WebAssembly component with componentize-py.
# Not part of the Cargo workspace build: run it yourself (it needs Python 3.10+ and network
# access to PyPI the first time).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
wit="$here/../../wit/v0.2.0"
venv="$here/.venv"
if [ ! -x "$venv/bin/componentize-py" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet 'componentize-py==0.25.1'
fi
cd "$here"
"$venv/bin/componentize-py" -d "$wit" -w destination componentize app -o python-destination.wasm
echo "built $here/python-destination.wasm"
