"""The webhook audience destination, in Python, for audience-host.

The same destination as `examples/webhook-destination` (Rust), written against the same WIT
world (`wit/destination.wit`, world `destination`) and compiled to a component with
componentize-py. It speaks the same wire format: each batch is POSTed as JSON to
`{base-url}{path}`, signed with HMAC-SHA256 of the body under `client-secret`
(`x-audience-signature: sha256=<hex>`).

Build: `./build.sh` (see README.md). Test: `audience-host plugin test python-destination.wasm`.
"""

import hashlib
import hmac
import json

# `hmac` imports `warnings` lazily, and componentize-py bundles only the modules it sees
# imported: import it here so it is in the component.
import warnings  # noqa: F401

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import http_client, log, types

K = types.IdentifierKind
MAX_BATCH_SIZE = 1000
DEFAULT_PATH = "/audience-batches"
IDENTIFIERS = [K.EMAIL, K.MOBILE_AD_ID, K.IDFA, K.EXTERNAL_ID]
KIND_NAMES = {
    K.EMAIL: "email",
    K.PHONE: "phone",
    K.MOBILE_AD_ID: "mobile-ad-id",
    K.IDFA: "idfa",
    K.EXTERNAL_ID: "external-id",
}
HEX = set("0123456789abcdef")


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
    if kind in (K.EMAIL, K.MOBILE_AD_ID, K.IDFA):
        trimmed = raw.strip()
        if _is_sha256_hex(trimmed):
            return trimmed.lower()  # already hashed: pass through
        normalize = normalize_email if kind == K.EMAIL else normalize_device_id
        return hashlib.sha256(normalize(trimmed).encode()).hexdigest()
    if kind == K.EXTERNAL_ID:
        value = raw.strip()
        if not value:
            raise ValueError("the value is empty")
        if len(value) > 256 or not value.isprintable():
            raise ValueError(f"'{_quoted(value)!r}' is too long or contains a control character")
        return value
    raise ValueError("phone numbers are not supported")


def prepare_user(fields, user):
    usable, problems = [], []
    for identifier in user.identifiers:
        if identifier.kind not in fields or identifier.kind not in IDENTIFIERS:
            continue
        try:
            value = prepare_value(identifier.kind, identifier.value)
        except ValueError as why:
            problems.append(f"no usable {KIND_NAMES[identifier.kind]}: {why}")
            continue
        if not any(u.kind == identifier.kind and u.value == value for u in usable):
            usable.append(types.Identifier(kind=identifier.kind, value=value))
    if usable:
        return types.Preparation_Ready(types.PreparedUser(key=user.key, identifiers=usable))
    reason = "; ".join(problems[:3]) or "none of the selected identifiers is present"
    return types.Preparation_NotSynced(reason)


# --- HTTP through the host ---------------------------------------------------------------------


def _retry_after_ms(headers):
    for name, value in headers:
        if name.lower() == "retry-after" and value.strip().isdigit():
            return min(int(value.strip()) * 1000, 2**32 - 1)
    return None


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


def send(what, method, url, headers, body):
    request = http_client.Request(method=method, url=url, headers=headers, body=body)
    try:
        response = http_client.send(request)
    except Err as err:
        failure = err.value
        log.log(log.Level.WARN, f"webhook-py: could not {what}: {type(failure).__name__}")
        if isinstance(failure, http_client.HttpError_Denied):
            raise Err(types.DestinationError_InvalidRequest(f"the host refused the request: {failure.value}"))
        raise Err(types.DestinationError_Transient(f"no answer when trying to {what}"))
    if not 200 <= response.status < 300:
        log.log(log.Level.WARN, f"webhook-py: could not {what}: HTTP {response.status}")
        raise Err(status_error(response, what))
    return response


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


def write_users(config, creds, account_id, target, operation, users):
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
                {
                    "key": u.key,
                    "identifiers": [{"kind": KIND_NAMES[i.kind], "value": i.value} for i in u.identifiers],
                }
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
    headers = [
        ("content-type", "application/json"),
        ("x-audience-signature", signature),
        ("x-audience-batch-id", hashlib.sha256(body).hexdigest()[:32]),
    ] + _auth_headers(creds)
    response = send("deliver the batch", "POST", url, headers, body)
    rejected = []
    if response.body.strip():
        try:
            answer = json.loads(response.body)
        except ValueError:
            raise Err(types.DestinationError_Transient("the receiver's answer is not JSON"))
        for item in answer.get("rejected", []) if isinstance(answer, dict) else []:
            rejected.append(types.RejectedUser(key=str(item.get("key", "")), reason=str(item.get("reason", ""))))
    log.log(log.Level.DEBUG, f"webhook-py: {operation} {len(users)} users: HTTP {response.status}")
    return types.BatchOutcome(rejected=rejected, created=created)


def upsert(config, creds, account_id, spec):
    body = json.dumps(
        {
            "account": account_id,
            "name": spec.name,
            "description": spec.description,
            "identifiers": [KIND_NAMES[k] for k in spec.identifiers],
            "create_if_missing": spec.create_if_missing,
        }
    ).encode()
    headers = [("content-type", "application/json")] + _auth_headers(creds)
    response = send("find or create the audience", "POST", _base_url(config) + "/audiences", headers, body)
    try:
        answer = json.loads(response.body)
        audience_id = str(answer["id"])
    except (ValueError, KeyError, TypeError):
        raise Err(types.DestinationError_Transient("the receiver's answer about the audience is not the expected JSON"))
    return types.Audience(
        id=audience_id,
        name=str(answer.get("name") or spec.name),
        created=bool(answer.get("created", False)),
        details=[("receiver id", audience_id)],
    )


# --- the exports ---------------------------------------------------------------------------------


class Plugin(exports.Plugin):
    def describe(self):
        return types.Manifest(
            name="webhook-py",
            version="0.1.0",
            display_name="Webhook audience (Python)",
            identifiers=list(IDENTIFIERS),
            supports_removal=True,
            limits=types.Limits(max_batch_size=MAX_BATCH_SIZE, requests_per_second=10.0, max_concurrent_requests=4),
            oauth=None,
            default_hosts=[],
        )

    def prepare_users(self, fields, users):
        return [prepare_user(fields, user) for user in users]

    def authorize(self, config, grant):
        if isinstance(grant, types.Grant_Refresh):
            raise Err(types.DestinationError_Unauthorized("webhook tokens cannot be refreshed; configure a new token"))
        raise Err(types.DestinationError_InvalidRequest("the webhook destination does not use OAuth"))

    def list_accounts(self, config, creds, cursor):
        account = types.Account(id="default", name="Webhook receiver", permissions=["WRITE"])
        return types.AccountPage(accounts=[account], next_cursor=None)

    def upsert_audience(self, config, creds, account_id, spec):
        return types.UpsertOutcome_Ready(upsert(config, creds, account_id, spec))

    def add_users(self, config, creds, account_id, target, users):
        return write_users(config, creds, account_id, target, "add", users)

    def remove_users(self, config, creds, account_id, target, users):
        return write_users(config, creds, account_id, target, "remove", users)
