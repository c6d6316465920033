#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis against a real `audience-host serve`, and exits non-zero
# on any failure. Run by .ci/run after the cargo tests; a developer can run it alone:
#
#   .ci/schemathesis.sh                          # builds target/debug/audience-host if needed
#   SCHEMATHESIS_MAX_EXAMPLES=200 .ci/schemathesis.sh
#   SCHEMATHESIS_HOST_BINARY=target/release/audience-host .ci/schemathesis.sh
#
# (Not AUDIENCE_HOST_*: every variable with that prefix is a configuration override of serve.)
#
# What it does: starts the Pinterest and Meta sandboxes and a host on loopback ports (a scratch
# SQLite store, the built-in plugins pointed at the sandboxes), creates a workspace, a
# connection holding a sandbox token and a sync through the API, then runs schemathesis twice
# over every operation of /openapi.json: once with that workspace's key, once with the
# operator key (each kind of key sees the other kind's routes answer 403). Checks: no 5xx,
# no status the document does not list, bodies and content types as documented. The host's
# log is printed when a run fails. Needs python3 (with venv) and network access to PyPI the
# first time (schemathesis is installed, pinned, into target/schemathesis/venv).
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${SCHEMATHESIS_MAX_EXAMPLES:-25}
SEED=${SCHEMATHESIS_SEED:-}
VENV=${SCHEMATHESIS_VENV:-target/schemathesis/venv}

if [ -n "${SCHEMATHESIS_HOST_BINARY:-}" ]; then
    BIN=$SCHEMATHESIS_HOST_BINARY
else
    cargo build -p audience-host
    BIN=target/debug/audience-host
fi

if [ "$("$VENV/bin/schemathesis" --version 2>/dev/null || true)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url` answers 2xx, or fails naming `what` and showing its log.
wait_for() {
    local url=$1 what=$2 log=$3
    for _ in $(seq 600); do
        curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "$what did not start ($url); its log:" >&2
    cat "$log" >&2
    exit 1
}

pinterest_port=$(free_port)
meta_port=$(free_port)
host_port=$(free_port)
"$BIN" sandbox pinterest --port "$pinterest_port" --rate-limit 0 >"$work/pinterest.log" 2>&1 &
pids+=($!)
"$BIN" sandbox meta --port "$meta_port" >"$work/meta.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$pinterest_port/_sandbox/summary" "the Pinterest sandbox" "$work/pinterest.log"
wait_for "http://127.0.0.1:$meta_port/_sandbox/summary" "the Meta sandbox" "$work/meta.log"

cat >"$work/host.toml" <<EOF
listen = "127.0.0.1:$host_port"
public_url = "http://127.0.0.1:$host_port"
store = "$work/host.db"
credentials_key = { env = "AUDIENCE_HOST_CREDENTIALS_KEY" }
operator_key = { env = "AUDIENCE_HOST_OPERATOR_KEY" }

[runtime]
cache_dir = "$work/compile-cache"

[plugins.pinterest]
component = "builtin:pinterest"
base_url = "http://127.0.0.1:$pinterest_port"
plain_http_hosts = ["127.0.0.1:$pinterest_port"]
client_id = "sandbox-app"
client_secret = { env = "SANDBOX_CLIENT_SECRET" }

[plugins.meta]
component = "builtin:meta"
base_url = "http://127.0.0.1:$meta_port"
plain_http_hosts = ["127.0.0.1:$meta_port"]
client_id = "sandbox-app"
client_secret = { env = "SANDBOX_CLIENT_SECRET" }
EOF
operator_key=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
AUDIENCE_HOST_CREDENTIALS_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))') \
    AUDIENCE_HOST_OPERATOR_KEY=$operator_key SANDBOX_CLIENT_SECRET=sandbox-secret RUST_LOG=${RUST_LOG:-warn} \
    "$BIN" serve --config "$work/host.toml" >"$work/host.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$host_port"
wait_for "$base/readyz" "audience-host serve" "$work/host.log"

# Reads one field of a JSON document on stdin: json_field workspace.id
json_field() {
    python3 -c 'import json, sys
value = json.load(sys.stdin)
for part in sys.argv[1].split("."):
    value = value[int(part)] if part.isdigit() else value[part]
print(value)' "$1"
}
api() {
    local key=$1 method=$2 path=$3 body=${4:-}
    curl -fsS -X "$method" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        ${body:+--data "$body"} "$base$path"
}

# A workspace with a working connection and a sync, so the listings hold real objects and
# the stateful phase has something to follow.
workspace=$(api "$operator_key" POST /v1/workspaces '{"name": "schemathesis"}')
workspace_key=$(json_field api_key.key <<<"$workspace")
token=$(curl -fsS -X POST -H 'Content-Type: application/json' --data '{}' \
    "http://127.0.0.1:$pinterest_port/_sandbox/tokens" | json_field access_token)
connection=$(api "$workspace_key" POST /v1/connections \
    "{\"destination\": \"pinterest\", \"name\": \"sandbox\", \"credentials\": {\"access_token\": \"$token\"}}" |
    json_field id)
account=$(api "$workspace_key" GET "/v1/connections/$connection/accounts" | json_field accounts.0.id)
api "$workspace_key" POST /v1/syncs "{\"connection_id\": \"$connection\", \"account_id\": \"$account\",
    \"audience_name\": \"schemathesis\", \"match_fields\": [\"email\"]}" >/dev/null

# One worker: with two, Debian's Python 3.11 sometimes fails inside schemathesis ("SystemError:
# AST constructor recursion depth mismatch", a CPython bug with ast.parse in concurrent threads),
# and a run takes seconds anyway.
run() {
    local who=$1 key=$2
    echo "== schemathesis with the $who key (at most $MAX_EXAMPLES examples per operation)"
    local args=(
        run "$base/openapi.json"
        --url "$base"
        --header "Authorization: Bearer $key"
        --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance
        --max-examples "$MAX_EXAMPLES"
        --generation-with-security-parameters false
        --request-timeout 60
        --workers 1
        --no-color
        --report junit --report-dir "target/schemathesis/report-$who"
    )
    [ -n "$SEED" ] && args+=(--seed "$SEED")
    if ! "$VENV/bin/schemathesis" "${args[@]}"; then
        echo "schemathesis found failures with the $who key; the host's log:" >&2
        tail -n 200 "$work/host.log" >&2
        return 1
    fi
}

# The workspace key first: the operator's run may revoke the workspace's keys.
status=0
run workspace "$workspace_key" || status=1
run operator "$operator_key" || status=1
if ! curl -fsS -o /dev/null "$base/healthz"; then
    echo "the host stopped answering during the runs; its log:" >&2
    tail -n 200 "$work/host.log" >&2
    status=1
fi
exit $status
