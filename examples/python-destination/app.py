"""The webhook audience destination, in Python: the Python kit's example.

The same destination as `examples/webhook-destination` (Rust), written against the same WIT
world (`wit/v0.2.0/destination.wit`, package `audience:destination@0.2.0`, world
`destination`) and compiled to a component with componentize-py. It speaks the same wire
format: each batch is POSTed as JSON to `{base-url}{path}`, signed with HMAC-SHA256 of the body
under `client-secret` (`x-audience-signature: sha256=<hex>`), with the host's batch id and
attempt as headers; audiences are searched with `GET {base-url}/audiences`, read with
`GET {base-url}/audience` and found or created with `POST {base-url}/audiences`.

This module holds what is particular to the partner (manifest, identifier rules, endpoints
and bodies); everything every destination needs is in `helpers.py`. Unlike the Rust template
it hashes through the host's `hashing` import (`helpers.hashed_many`): CPython's SHA-256 in
WebAssembly costs several times the host's.

Build: `./build.sh`; unit tests: `./build.sh test` (see README.md).
"""

import hashlib
import hmac
import json
import urllib.parse

# `hmac` imports `warnings` lazily, and componentize-py bundles only the modules it sees
# imported: import it here so it is in the component.
import warnings  # noqa: F401

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

import helpers

# Identifier kinds are names (strings) since contract 0.2.0.
EMAIL, MOBILE_AD_ID, IDFA, EXTERNAL_ID = "email", "mobile-ad-id", "idfa", "external-id"
#: The identifier kinds the receiver matches on.
IDENTIFIERS = [EMAIL, MOBILE_AD_ID, IDFA, EXTERNAL_ID]
#: The most users in one batch request. The host never sends more; the plugin refuses more
#: anyway, since an operator may override the limit upwards.
MAX_BATCH_SIZE = 1000
#: The longest external id accepted, in characters.
MAX_EXTERNAL_ID = 256
DEFAULT_PATH = "/audience-batches"
BUDGET_USED_HEADER = "x-budget-used-percent"
BUDGET_REGAIN_HEADER = "x-budget-regain-ms"
_NORMALIZERS = {EMAIL: helpers.normalize_email, MOBILE_AD_ID: helpers.normalize_device_id, IDFA: helpers.normalize_device_id}


# --- describe ------------------------------------------------------------------------------------


def manifest(config):
    """Who the plugin is, for `config`: pure. `default-hosts` names the `base-url`'s host."""
    host = urllib.parse.urlsplit(config.base_url.strip()).hostname if config.base_url else None
    return types.Manifest(
        name="webhook-py",
        version="0.2.0",
        display_name="Webhook audience (Python)",
        identifiers=list(IDENTIFIERS),
        audience_keys=types.AudienceKeys.MULTI_KEY,
        features=types.Features.REMOVAL | types.Features.AUDIENCE_SEARCH,
        limits=types.Limits(
            max_batch_size=MAX_BATCH_SIZE,
            requests_per_second=10.0,
            max_concurrent_requests=4,
            max_submissions_per_audience=0,
            app_requests_per_second=None,
        ),
        oauth=None,
        default_hosts=[host] if host else [],
    )


# --- prepare-users: pure, local, deterministic ---------------------------------------------------


def external_id(raw):
    """An external id is an id both sides agreed on: trimmed and sent as it is."""
    value = raw.strip()
    if not value:
        raise helpers.IdentityError("the value is empty")
    if len(value) > MAX_EXTERNAL_ID:
        raise helpers.IdentityError(f"'{helpers.excerpt(value, 40)}' is longer than {MAX_EXTERNAL_ID} characters")
    if not value.isprintable():
        raise helpers.IdentityError(f"{helpers.excerpt(value, 40)!r} contains a control character")
    return value


def prepare_users(fields, users):
    """One preparation per user, in order. E-mails and device ids are validated and normalised
    here and hashed by the host in bulk (values already SHA-256 hex pass through); external
    ids are sent as they are. Only identifiers of the selected, supported `fields` are kept; a
    user left with none is `not-synced`, with the reasons."""
    selected = [kind for kind in IDENTIFIERS if kind in fields]
    # Every hashed value of the call, per kind, in one host call per kind (chunked).
    picked = [
        [(i, identifier.kind) for i, identifier in enumerate(user.identifiers) if identifier.kind in selected]
        for user in users
    ]
    results = {}
    for kind, normalize in _NORMALIZERS.items():
        spots = [(u, i) for u, ids in enumerate(picked) for i, k in ids if k == kind]
        values = helpers.hashed_many([users[u].identifiers[i].value for u, i in spots], normalize)
        results.update(zip(spots, values))
    out = []
    for u, user in enumerate(users):
        usable, problems = [], []
        for i, kind in picked[u]:
            if kind in _NORMALIZERS:
                value = results[(u, i)]
            else:
                try:
                    value = external_id(user.identifiers[i].value)
                except helpers.IdentityError as why:
                    value = why
            if isinstance(value, helpers.IdentityError):
                problems.append(f"no usable {kind}: {value}")
            elif not any(x.kind == kind and x.value == value for x in usable):
                usable.append(types.Identifier(kind=kind, value=value))
        if usable:
            out.append(types.Preparation_Ready(types.PreparedUser(key=user.key, identifiers=usable, consent=user.consent)))
        elif not problems:
            out.append(types.Preparation_NotSynced("none of the selected identifiers is present"))
        else:
            more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            out.append(types.Preparation_NotSynced("; ".join(problems[:3]) + more))
    return out


# --- configuration -------------------------------------------------------------------------------


def _config_value(value, name):
    if value is None or not value.strip():
        raise Err(
            types.DestinationError_InvalidRequest(
                f"the webhook destination is not configured: set `{name}` in the plugin configuration"
            )
        )
    return value.strip()


def _base_url(config):
    return _config_value(config.base_url, "base-url").rstrip("/")


def _query(url, **params):
    pairs = [(k, v) for k, v in params.items() if v is not None]
    return url + "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


def report_budget(response):
    """Pass the receiver's rate-budget reading, if it sent one, to the host."""
    try:
        used = float((helpers.header(response.headers, BUDGET_USED_HEADER) or "").strip())
    except ValueError:
        return
    regain = (helpers.header(response.headers, BUDGET_REGAIN_HEADER) or "").strip()
    helpers.report_budget(used, int(regain) if regain.isdigit() else None)


def send(what, method, url, headers, body=b""):
    """`helpers.send`, reporting the receiver's budget from every answer that carries one
    (a 429 included)."""
    return helpers.send(what, method, url, headers, body, on_response=report_budget)


# --- audiences -----------------------------------------------------------------------------------

STATES = {
    "ready": types.AudienceState.READY,
    "populating": types.AudienceState.POPULATING,
    "too-small": types.AudienceState.TOO_SMALL,
    "unusable": types.AudienceState.UNUSABLE,
}


def to_audience(wire, fallback_id, fallback_name):
    """The contract's audience from the receiver's JSON (only `id` is required)."""
    wire = wire if isinstance(wire, dict) else {}
    audience_id = str(wire.get("id") or fallback_id)
    size = wire.get("size")
    size = size if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**64 else None
    return types.Audience(
        id=audience_id,
        name=str(wire.get("name") or fallback_name),
        created=bool(wire.get("created", False)),
        identifiers=[k for k in wire.get("identifiers", []) if isinstance(k, str)],
        size=types.AudienceSize(lower=size, upper=size),
        state=STATES.get(wire.get("state"), types.AudienceState.UNKNOWN),
        status_detail=str(wire["status"]) if wire.get("status") else None,
        details=[("receiver id", audience_id)],
    )


def search(config, creds, account_id, query, cursor):
    url = _query(_base_url(config) + "/audiences", account=account_id, query=query, cursor=cursor or None)
    answer = helpers.json_body(send("search audiences", "GET", url, helpers.bearer(creds.access_token)), "to a search", {})
    answer = answer if isinstance(answer, dict) else {}
    audiences = [to_audience(a, "", "") for a in answer.get("audiences", []) if isinstance(a, dict) and a.get("id")]
    next_cursor = answer.get("next_cursor")
    return types.AudiencePage(audiences=audiences, next_cursor=str(next_cursor) if next_cursor else None)


def read(config, creds, account_id, audience_id):
    url = _query(_base_url(config) + "/audience", account=account_id, id=audience_id)
    response = send(f"read audience '{helpers.excerpt(audience_id, 40)}'", "GET", url, helpers.bearer(creds.access_token))
    return to_audience(helpers.json_body(response, "about the audience", {}), audience_id, audience_id)


def upsert(config, creds, account_id, spec):
    if spec.id:
        return read(config, creds, account_id, spec.id)
    body = json.dumps(
        {
            "account": account_id,
            "name": spec.name,
            "description": spec.description,
            "identifiers": list(spec.identifiers),
            "create_if_missing": spec.create_if_missing,
        }
    ).encode()
    headers = [("content-type", "application/json")] + helpers.bearer(creds.access_token)
    response = send("find or create the audience", "POST", _base_url(config) + "/audiences", headers, body)
    answer = helpers.json_body(response, "about the audience", {})
    if not isinstance(answer, dict) or not answer.get("id"):
        raise Err(types.DestinationError_Transient("the receiver's answer about the audience has no id"))
    return to_audience(answer, "", spec.name)


def check_target(config, creds, account_id, spec):
    """Every reason the sync's target cannot work; creates nothing."""
    problems = []
    if not any(kind in IDENTIFIERS for kind in spec.identifiers):
        problems.append(
            types.TargetProblem(
                part=types.TargetPart.IDENTIFIERS,
                message=f"the receiver matches on {', '.join(IDENTIFIERS)}; the sync sends only "
                + (", ".join(spec.identifiers) or "nothing"),
            )
        )
    audience = None
    if spec.id:
        try:
            audience = read(config, creds, account_id, spec.id)
        except Err as err:
            if not isinstance(err.value, types.DestinationError_NotFound):
                raise
            problems.append(
                types.TargetProblem(
                    part=types.TargetPart.AUDIENCE, message=f"the receiver has no audience '{spec.id}'; pick another one"
                )
            )
    elif not spec.create_if_missing:
        cursor, seen = None, set()
        for _ in range(200):
            page = search(config, creds, account_id, spec.name, cursor)
            audience = next((a for a in page.audiences if a.name == spec.name), None)
            if audience is not None or not page.next_cursor or page.next_cursor in seen:
                break
            seen.add(page.next_cursor)
            cursor = page.next_cursor
        if audience is None:
            problems.append(
                types.TargetProblem(
                    part=types.TargetPart.AUDIENCE,
                    message=f"the receiver has no audience named '{spec.name}' and the sync may not create one",
                )
            )
    if audience is not None and audience.state == types.AudienceState.UNUSABLE:
        problems.append(
            types.TargetProblem(
                part=types.TargetPart.AUDIENCE,
                message=f"the receiver says audience '{audience.name}' is unusable: {audience.status_detail or 'no reason given'}",
            )
        )
    return problems


# --- add-users / remove-users --------------------------------------------------------------------


def batch_body(operation, account_id, audience, users):
    """The JSON body of a batch request, compact, as the receiver signs it."""
    return json.dumps(
        {
            "operation": operation,
            "account": account_id,
            "audience": audience,
            "users": [
                {"key": u.key, "identifiers": [{"kind": i.kind, "value": i.value} for i in u.identifiers]}
                for u in users
            ],
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def sign(secret, body):
    """The `x-audience-signature` value: HMAC-SHA256 of the raw body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def outcome(answer):
    """The batch outcome from the receiver's 2xx answer: users it refused by key, rows it
    dropped without naming them. Anything malformed in it is ignored."""
    answer = answer if isinstance(answer, dict) else {}
    rejected = [
        types.RejectedUser(key=str(item.get("key", "")), reason=str(item.get("reason", "")))
        for item in answer.get("rejected", [])
        if isinstance(item, dict)
    ]
    unattributed = [
        types.UnattributedRejection(
            count=item["count"], reason=str(item.get("reason", "")), samples=[str(s) for s in item.get("samples", [])][:10]
        )
        for item in answer.get("unattributed", [])
        if isinstance(item, dict)
        and isinstance(item.get("count"), int)
        and not isinstance(item.get("count"), bool)
        and 0 < item["count"] < 2**32
    ]
    return rejected, unattributed


def write_users(config, creds, account_id, target, operation, batch):
    users = batch.users
    if len(users) > MAX_BATCH_SIZE:
        raise Err(
            types.DestinationError_InvalidRequest(
                f"a batch of {len(users)} users exceeds the receiver's limit of {MAX_BATCH_SIZE}"
            )
        )
    created = None
    if isinstance(target, types.AudienceTarget_Create):
        created = upsert(config, creds, account_id, target.value)
        audience = created.id
    else:
        audience = target.value
    body = batch_body(operation, account_id, audience, users)
    secret = _config_value(config.client_secret, "client-secret")
    path = dict(config.settings).get("path", "").strip() or DEFAULT_PATH
    url = _base_url(config) + ("" if path.startswith("/") else "/") + path
    batch_id = batch.id.strip() or hashlib.sha256(body).hexdigest()[:32]
    headers = [
        ("content-type", "application/json"),
        ("x-audience-signature", sign(secret, body)),
        ("x-audience-batch-id", batch_id),
        ("x-audience-attempt", str(batch.attempt)),
    ] + helpers.bearer(creds.access_token)
    response = send("deliver the batch", "POST", url, headers, body)
    rejected, unattributed = outcome(helpers.json_body(response, f"to batch {batch_id}", {}))
    helpers.debug(f"batch {batch_id} attempt {batch.attempt}: {operation} {len(users)} users: HTTP {response.status}")
    return types.WriteOutcome_Done(types.BatchOutcome(rejected=rejected, unattributed=unattributed, created=created))


# --- the exports ---------------------------------------------------------------------------------


class Plugin(exports.Plugin):
    """The exported interface: componentize-py looks for a class named after it."""

    def describe(self, config):
        return manifest(config)

    def prepare_users(self, fields, users):
        return prepare_users(fields, users)

    def authorize(self, config, grant):
        if isinstance(grant, types.Grant_Refresh):
            raise Err(types.DestinationError_Unauthorized("webhook tokens cannot be renewed; configure a new token"))
        raise Err(types.DestinationError_InvalidRequest("the webhook destination does not use OAuth"))

    def list_accounts(self, config, creds, cursor):
        account = types.Account(id="default", name="Webhook receiver", permissions=["WRITE"])
        return types.AccountPage(accounts=[account], next_cursor=None)

    def search_audiences(self, config, creds, account_id, query, cursor):
        return search(config, creds, account_id, query, cursor)

    def read_audience(self, config, creds, account_id, audience_id):
        return read(config, creds, account_id, audience_id)

    def check_target(self, config, creds, account_id, spec):
        return check_target(config, creds, account_id, spec)

    def upsert_audience(self, config, creds, account_id, spec):
        return types.UpsertOutcome_Ready(upsert(config, creds, account_id, spec))

    def add_users(self, config, creds, account_id, target, batch):
        return write_users(config, creds, account_id, target, "add", batch)

    def remove_users(self, config, creds, account_id, target, batch):
        return write_users(config, creds, account_id, target, "remove", batch)

    def check_submission(self, config, creds, account_id, target, submission_id):
        raise Err(types.DestinationError_InvalidRequest("the webhook destination finishes every batch in its request"))
