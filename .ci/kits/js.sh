#!/usr/bin/env bash
# The JavaScript/TypeScript plugin kit in CI: installs the kit (examples/js-kit) and the template
# destination (examples/js-destination) from their lockfiles, type-checks and unit-tests both
# (node --test, fake imports), builds the template into a component with jco's default flags,
# and runs the conformance suite on it with the host binary `cargo test --workspace` built.
# Needs node 20+ and npm (packages come from the npm registry, pinned by package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/../.."

host=${KIT_HOST_BINARY:-target/debug/audience-host}
if [ ! -x "$host" ]; then
    echo "js kit: $host is missing: run \`cargo build --workspace\` (or \`cargo test --workspace\`) first" >&2
    exit 1
fi
if ! command -v npm >/dev/null || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "js kit: node 20 or newer and npm are needed (node: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi

started=$SECONDS
for package in examples/js-kit examples/js-destination; do
    echo "== $package"
    (cd "$package" && npm ci --no-audit --no-fund && npm run --silent typecheck && npm test)
done
echo "== examples/js-destination: npm run build (jco componentize, default flags)"
(cd examples/js-destination && npm run --silent build)
ls -l examples/js-destination/dist/js-destination.wasm
echo "== audience-host plugin test"
"$host" plugin test examples/js-destination/dist/js-destination.wasm
echo "js kit: installed, tested, built and conformance-tested in $((SECONDS - started)) s"
