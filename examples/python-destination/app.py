"""The webhook audience destination, in Python, for audience-host.

The same destination as `examples/webhook-destination` (Rust), written against the same WIT
world (`wit/v0.2.0/destination.wit`, package `audience:destination@0.2.0`, world
`destination`) and compiled to a component with componentize-py. It speaks the same wire
format: each batch is POSTed as JSON to `{base-url}{path}`, signed with HMAC-SHA256 of the body
under `client-secret` (`x-audience-signature: sha256=<hex>`), with the host's batch id and
attempt as headers; audiences are searched with `GET {base-url}/audiences`, read with
`GET {base-url}/audience` and found or created with `POST {base-url}/audiences`.

Unlike the Rust template it hashes through the host's `hashing` import: CPython's SHA-256 in
WebAssembly is slow, so `prepare-users` validates and normalises each value in Python and
hands every value of the call to the host in one `hashing.sha256_hex` call.

Build: `./build.sh` (see README.md). Test: `audience-host plugin test python-destination.wasm`.
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
from wit_world.imports import hashing, http_client, log, pacing, types

# Identifier kinds are names (strings) since contract 0.2.0.
EMAIL, PHONE, MOBILE_AD_ID, IDFA, EXTERNAL_ID = "email", "phone", "mobile-ad-id", "idfa", "external-id"
IDENTIFIERS = [EMAIL, MOBILE_AD_ID, IDFA, EXTERNAL_ID]
MAX_BATCH_SIZE = 1000
DEFAULT_PATH = "/audience-batches"
HEX = set("0123456789abcdef")
# Values per `hashing.sha256_hex` call (the host accepts many more).
HASH_CHUNK = 10000
BUDGET_USED_HEADER = "x-budget-used-percent"
BUDGET_REGAIN_HEADER = "x-budget-regain-ms"


# --- prepare-users: pure, local, deterministic -------------------------------------------------


def _quoted(value):
    return value if len(value) <= 40 else value[:40] + "…"


def _is_sha256_hex(value):
    return len(value) == 64 and set(value.lower()) <= HEX


def normalize_email(raw):
    email = raw.strip().lower()
    if not email:
        raise ValueError("the value is empty")
    if len(email) > 254:
        raise ValueError(f"'{_quoted(email)}' is longer than 254 characters")
    if any(c.isspace() or not c.isprintable() for c in email):
        raise ValueError(f"'{_quoted(email)}' contains whitespace")
    if email.count("@") != 1:
        raise ValueError(f"'{_quoted(email)}' must contain exactly one '@'")
    local, domain = email.split("@")
    if not local or not domain:
        raise ValueError(f"'{_quoted(email)}' has an empty part around the '@'")
    labels = domain.split(".")
    if len(labels) < 2 or any(not label for label in labels) or len(labels[-1]) < 2:
        raise ValueError(f"'{_quoted(email)}' has no plausible domain")
    return email


def normalize_device_id(raw):
    value = raw.strip().lower()
    shaped = len(value) == 36 and all(
        (c == "-") if i in (8, 13, 18, 23) else (c in HEX) for i, c in enumerate(value)
    )
    if not shaped:
        raise ValueError(f"'{_quoted(value)}' is not a device id (8-4-4-4-12 hex digits)")
    if set(value) <= {"0", "-"}:
        raise ValueError("the all-zero device id means the user limited ad tracking")
    return value


def prepare_value(kind, raw):
    """The value to send for an identifier of `kind`, as (needs_hashing, value); raises
    ValueError with the reason when there is none."""
    if kind in (EMAIL, MOBILE_AD_ID, IDFA):
        trimmed = raw.strip()
        if _is_sha256_hex(trimmed):
            return False, trimmed.lower()  # already hashed: pass through
        normalize = normalize_email if kind == EMAIL else normalize_device_id
        return True, normalize(trimmed)
    if kind == EXTERNAL_ID:
        value = raw.strip()
        if not value:
            raise ValueError("the value is empty")
        if len(value) > 256 or not value.isprintable():
            raise ValueError(f"'{_quoted(value)!r}' is too long or contains a control character")
        return False, value
    raise ValueError(f"{kind} is not supported")


def hash_all(values):
    """The SHA-256 hex of each (already normalised) value, computed by the host."""
    digests = []
    for i in range(0, len(values), HASH_CHUNK):
        digests.extend(hashing.sha256_hex(hashing.Normalization.NONE, values[i : i + HASH_CHUNK]))
    return digests


def prepare_users(fields, users):
    """One preparation per user. Values are validated here and hashed in one host call."""
    staged, to_hash = [], []
    for user in users:
        usable, problems = [], []
        for identifier in user.identifiers:
            if identifier.kind not in fields or identifier.kind not in IDENTIFIERS:
                continue
            try:
                needs_hashing, value = prepare_value(identifier.kind, identifier.value)
            except ValueError as why:
                problems.append(f"no usable {identifier.kind}: {why}")
                continue
            if needs_hashing:
                to_hash.append(value)
                usable.append((identifier.kind, None, len(to_hash) - 1))
            else:
                usable.append((identifier.kind, value, None))
        staged.append((user, usable, problems))
    digests = hash_all(to_hash) if to_hash else []
    out = []
    for user, usable, problems in staged:
        identifiers = []
        for kind, value, ticket in usable:
            value = digests[ticket] if ticket is not None else value
            if not any(i.kind == kind and i.value == value for i in identifiers):
                identifiers.append(types.Identifier(kind=kind, value=value))
        if identifiers:
            prepared = types.PreparedUser(key=user.key, identifiers=identifiers, consent=user.consent)
            out.append(types.Preparation_Ready(prepared))
        else:
            reason = "; ".join(problems[:3]) or "none of the selected identifiers is present"
            out.append(types.Preparation_NotSynced(reason))
    return out


# --- HTTP through the host ---------------------------------------------------------------------


def _header(headers, wanted):
    for name, value in headers:
        if name.lower() == wanted:
            return value
    return None


def _retry_after_ms(headers):
    value = (_header(headers, "retry-after") or "").strip()
    return min(int(value) * 1000, 2**32 - 1) if value.isdigit() else None


def status_error(response, what):
    """The SDK's default mapping of an HTTP status to destination-error."""
    status = response.status
    detail = f"HTTP {status}: could not {what}"
    if status == 429:
        return types.DestinationError_RateLimited(_retry_after_ms(response.headers))
    if status in (401, 403):
        return types.DestinationError_Unauthorized(detail)
    if status == 404:
        return types.DestinationError_NotFound(detail)
    if status == 408 or 500 <= status <= 599:
        return types.DestinationError_Transient(detail)
    return types.DestinationError_InvalidRequest(detail)


def report_budget(response):
    """Pass the receiver's rate-budget reading, if it sent one, to the host's pacing import."""
    try:
        used = float((_header(response.headers, BUDGET_USED_HEADER) or "").strip())
    except ValueError:
        return
    if used != used or used in (float("inf"), float("-inf")):  # NaN or infinite
        return
    regain = (_header(response.headers, BUDGET_REGAIN_HEADER) or "").strip()
    reading = pacing.Budget(used_percent=min(max(used, 0.0), 100.0), regain_after_ms=int(regain) if regain.isdigit() else None)
    pacing.report_budget(reading)


def send(what, method, url, headers, body=b""):
    request = http_client.Request(method=method, url=url, headers=headers, body=body)
    try:
        response = http_client.send(request)
    except Err as err:
        failure = err.value
        log.log(log.Level.WARN, f"webhook-py: could not {what}: {type(failure).__name__}")
        if isinstance(failure, http_client.HttpError_Denied):
            raise Err(types.DestinationError_InvalidRequest(f"the host refused the request: {failure.value}"))
        raise Err(types.DestinationError_Transient(f"no answer when trying to {what}"))
    report_budget(response)
    if not 200 <= response.status < 300:
        log.log(log.Level.WARN, f"webhook-py: could not {what}: HTTP {response.status}")
        raise Err(status_error(response, what))
    return response


def _json_answer(response, what, default):
    """The JSON body of a 2xx answer; `default` for an empty body."""
    if not response.body.strip():
        return default
    try:
        return json.loads(response.body)
    except ValueError:
        raise Err(types.DestinationError_Transient(f"the receiver's answer {what} is not JSON"))


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


def _auth_headers(creds):
    return [("authorization", f"Bearer {creds.access_token}")] if creds.access_token.strip() else []


def _query(url, **params):
    pairs = [(k, v) for k, v in params.items() if v is not None]
    return url + "?" + urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)


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
    size = size if isinstance(size, int) and size >= 0 else None
    return types.Audience(
        id=audience_id,
        name=str(wire.get("name") or fallback_name),
        created=bool(wire.get("created", False)),
        identifiers=[str(k) for k in wire.get("identifiers", []) if isinstance(k, str)],
        size=types.AudienceSize(lower=size, upper=size),
        state=STATES.get(wire.get("state"), types.AudienceState.UNKNOWN),
        status_detail=str(wire["status"]) if wire.get("status") else None,
        details=[("receiver id", audience_id)],
    )


def search(config, creds, account_id, query, cursor):
    url = _query(_base_url(config) + "/audiences", account=account_id, query=query, cursor=cursor or None)
    answer = _json_answer(send("search audiences", "GET", url, _auth_headers(creds)), "to a search", {})
    answer = answer if isinstance(answer, dict) else {}
    audiences = [to_audience(a, "", "") for a in answer.get("audiences", []) if isinstance(a, dict) and a.get("id")]
    return types.AudiencePage(audiences=audiences, next_cursor=answer.get("next_cursor") or None)


def read(config, creds, account_id, audience_id):
    url = _query(_base_url(config) + "/audience", account=account_id, id=audience_id)
    response = send(f"read audience '{audience_id}'", "GET", url, _auth_headers(creds))
    return to_audience(_json_answer(response, "about the audience", {}), audience_id, audience_id)


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
    headers = [("content-type", "application/json")] + _auth_headers(creds)
    response = send("find or create the audience", "POST", _base_url(config) + "/audiences", headers, body)
    answer = _json_answer(response, "about the audience", {})
    if not isinstance(answer, dict) or not answer.get("id"):
        raise Err(types.DestinationError_Transient("the receiver's answer about the audience has no id"))
    return to_audience(answer, "", spec.name)


def check_target(config, creds, account_id, spec):
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


# --- add-users / remove-users ----------------------------------------------------------------------


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
    body = json.dumps(
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
    secret = _config_value(config.client_secret, "client-secret").encode()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    path = dict(config.settings).get("path", "").strip() or DEFAULT_PATH
    url = _base_url(config) + ("" if path.startswith("/") else "/") + path
    batch_id = batch.id.strip() or hashlib.sha256(body).hexdigest()[:32]
    headers = [
        ("content-type", "application/json"),
        ("x-audience-signature", signature),
        ("x-audience-batch-id", batch_id),
        ("x-audience-attempt", str(batch.attempt)),
    ] + _auth_headers(creds)
    response = send("deliver the batch", "POST", url, headers, body)
    answer = _json_answer(response, f"to batch {batch_id}", {})
    answer = answer if isinstance(answer, dict) else {}
    rejected = [
        types.RejectedUser(key=str(item.get("key", "")), reason=str(item.get("reason", "")))
        for item in answer.get("rejected", [])
        if isinstance(item, dict)
    ]
    unattributed = [
        types.UnattributedRejection(
            count=int(item["count"]),
            reason=str(item.get("reason", "")),
            samples=[str(s) for s in item.get("samples", [])][:10],
        )
        for item in answer.get("unattributed", [])
        if isinstance(item, dict) and isinstance(item.get("count"), int) and 0 < item["count"] < 2**32
    ]
    log.log(
        log.Level.DEBUG,
        f"webhook-py: batch {batch_id} attempt {batch.attempt}: {operation} {len(users)} users: HTTP {response.status}",
    )
    return types.WriteOutcome_Done(types.BatchOutcome(rejected=rejected, unattributed=unattributed, created=created))


# --- the exports ---------------------------------------------------------------------------------


class Plugin(exports.Plugin):
    def describe(self, config):
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
