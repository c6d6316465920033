#!/usr/bin/env bash
# The Python kit's one command: a venv with the pinned build tool, the unit tests, the component.
#
#   ./build.sh             build the component (python-destination.wasm)
#   ./build.sh test        run the unit tests under plain CPython, against fresh bindings
#   ./build.sh bindings    (re)generate the bindings, to read the generated Python API
#
# Environment (all optional):
#   KIT_WORK   where the venv and the generated bindings go (default: .kit/ beside this file)
#   KIT_OUT    the component to write (default: python-destination.wasm beside this file)
#   KIT_WIT    the WIT directory of the contract (default: ../../wit/v0.2.0 from here)
#   PYTHON     the Python that creates the venv (default: python3; 3.10 or newer)
#
# Needs network access to PyPI the first time (componentize-py, pinned in requirements.txt).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wit=${KIT_WIT:-$here/../../wit/v0.2.0}
world=destination
work=${KIT_WORK:-$here/.kit}
out=${KIT_OUT:-$here/python-destination.wasm}
# Relative paths are the caller's, not this directory's.
case $work in /*) ;; *) work=$PWD/$work ;; esac
case $out in /*) ;; *) out=$PWD/$out ;; esac
venv="$work/venv"
bindings="$work/bindings"
# componentize-py adds an active virtualenv's site-packages to what it bundles: bundle only
# this directory.
unset VIRTUAL_ENV

# The venv, with exactly the pinned requirements (rebuilt when requirements.txt changes).
ensure_venv() {
    local stamp="$venv/requirements.txt"
    if [ -x "$venv/bin/componentize-py" ] && cmp -s "$here/requirements.txt" "$stamp"; then
        return
    fi
    rm -rf "$venv"
    mkdir -p "$work"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
}

generate_bindings() {
    rm -rf "$bindings"
    "$venv/bin/componentize-py" -d "$wit" -w "$world" bindings "$bindings" >/dev/null
}

ensure_venv
case "${1:-build}" in
    build)
        mkdir -p "$(dirname "$out")"
        (cd "$here" && "$venv/bin/componentize-py" -d "$wit" -w "$world" componentize app -o "$out")
        echo "built $out ($(wc -c <"$out") bytes)"
        ;;
    test)
        generate_bindings
        (cd "$here" && PYTHONPATH="$here:$bindings" "$venv/bin/python" -m unittest discover -s tests -t . "${@:2}")
        ;;
    bindings)
        generate_bindings
        echo "bindings in $bindings (wit_world/ is the generated API)"
        ;;
    *)
        echo "usage: $0 [build|test|bindings]" >&2
        exit 2
        ;;
esac
