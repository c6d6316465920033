"""What every Python destination needs, whoever the partner: the Python kit's counterpart of
the Rust SDK (`plugins/sdk`). Copy it unchanged; put your partner's rules in `app.py`.

Why it exists: the host's retries, batching and credential handling rest on promises only
the plugin can keep (a 404 is `not-found`, a 429 carries its `Retry-After`, a token never
reaches a log, two spellings of one address hash alike). Getting each of them right once,
here, with unit tests, leaves a destination only its partner's endpoints and bodies to write.

| part | what | Rust SDK |
|---|---|---|
| text | `excerpt` keeps partner messages and user values short in logs and errors | `text` |
| identity | `normalize_email`, `normalize_device_id`, `is_sha256_hex`, `hashed_many` (validate and normalise in Python, hash through the host's `hashing` import in chunks of `HOST_HASH_CHUNK`) | `identity` |
| errors | `http_failure` (no response), `status_error` (a non-2xx status, with `Retry-After`), `retry_after_ms` | `http::errors` |
| HTTP | `send` (through the `http-client` import; raises the mapped error), `header`, `json_body`, `bearer` | `http` |
| logging | `debug`, `info`, `warn`, `error` over the `log` import | `logging` |
| pacing | `report_budget` over the `pacing` import | `host::report_budget` |

Every import is called through its module (`http_client.send(...)`), so unit tests replace
them with fakes (`tests/fakes.py`) and run under plain CPython, without building a component.
"""

import hashlib
import json

from componentize_py_types import Err
from wit_world.imports import hashing, http_client, log, pacing, types

# --- text ----------------------------------------------------------------------------------------

#: How much of a rejected value an error message quotes.
MAX_QUOTED_CHARS = 40
#: The longest partner message carried into an error, in characters.
MAX_MESSAGE_CHARS = 300


def excerpt(text, max_chars):
    """The first `max_chars` characters of `text`, with `…` appended when it was cut."""
    return text if len(text) <= max_chars else text[:max_chars] + "…"


# --- identity ------------------------------------------------------------------------------------

#: The longest e-mail address accepted (RFC 5321's limit on a forward path).
MAX_EMAIL_LEN = 254
#: Values per `hashing.sha256_hex` call (the host accepts more; this keeps each call's memory
#: modest).
HOST_HASH_CHUNK = 10_000
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_LOWER_HEX = frozenset("0123456789abcdef")


class IdentityError(ValueError):
    """Why a value is not a usable identifier; `str()` is a reason an operator can act on,
    quoting at most `MAX_QUOTED_CHARS` characters of the value."""


def _quoted(value):
    return excerpt(value, MAX_QUOTED_CHARS)


def normalize_email(raw):
    """Trim and lowercase an e-mail address and check it looks like `local@domain.tld`."""
    email = raw.strip().lower()
    if not email:
        raise IdentityError("the value is empty")
    q = _quoted(email)
    if len(email) > MAX_EMAIL_LEN:
        raise IdentityError(f"'{q}' is longer than {MAX_EMAIL_LEN} characters")
    if any(c.isspace() or not c.isprintable() for c in email):
        raise IdentityError(f"'{q}' contains whitespace")
    if "@" not in email:
        raise IdentityError(f"'{q}' has no '@'")
    local, domain = email.split("@", 1)
    if "@" in domain:
        raise IdentityError(f"'{q}' has more than one '@'")
    if not local:
        raise IdentityError(f"'{q}' has nothing before the '@'")
    if not domain:
        raise IdentityError(f"'{q}' has no domain")
    if "." not in domain:
        raise IdentityError(f"'{q}' has no dot in its domain")
    labels = domain.split(".")
    if any(not label for label in labels):
        raise IdentityError(f"'{q}' has an empty part in its domain")
    if len(labels[-1]) < 2:
        raise IdentityError(f"'{q}' has a one-letter top-level domain")
    return email


def normalize_device_id(raw):
    """Trim and lowercase a mobile advertising id (Android MAID or Apple IDFA) and check it has
    the UUID shape `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. The all-zero id is refused: devices
    report it when the user limited ad tracking."""
    value = raw.strip().lower()
    if not value:
        raise IdentityError("the value is empty")
    shaped = len(value) == 36 and all(
        (c == "-") if i in (8, 13, 18, 23) else (c in _LOWER_HEX) for i, c in enumerate(value)
    )
    if not shaped:
        raise IdentityError(f"'{_quoted(value)}' is not a device id (8-4-4-4-12 hex digits)")
    if set(value) <= {"0", "-"}:
        raise IdentityError("the all-zero device id means the user limited ad tracking")
    return value


def is_sha256_hex(value):
    """Whether `value` is exactly 64 hex digits (either case): an already-hashed identifier."""
    return len(value) == 64 and all(c in _HEX_DIGITS for c in value)


def hash_all(values, normalization=None):
    """The SHA-256 hex of each of `values` (after `normalization`, default none), in order,
    computed by the host in calls of at most `HOST_HASH_CHUNK` values. CPython's own SHA-256 in
    WebAssembly costs several times the host's, so hash through the host. A chunk the host
    answers with the wrong number of digests is hashed here instead (only `none` then)."""
    normalization = hashing.Normalization.NONE if normalization is None else normalization
    digests = []
    for start in range(0, len(values), HOST_HASH_CHUNK):
        chunk = values[start : start + HOST_HASH_CHUNK]
        hashed = hashing.sha256_hex(normalization, chunk)
        if len(hashed) == len(chunk):
            digests.extend(hashed)
        elif normalization == hashing.Normalization.NONE:
            digests.extend(hashlib.sha256(value.encode()).hexdigest() for value in chunk)
        else:
            raise RuntimeError(f"the host answered {len(hashed)} digests for {len(chunk)} values")
    return digests


def hashed_many(raws, normalize):
    """Validate and normalise each of `raws` with `normalize` (raising `IdentityError`) in
    Python, then hash the normalised values through the host in bulk; a value that already is
    a SHA-256 hex digest (after trimming) passes through, lowercased. One result per value, in
    order: the digest, or the `IdentityError`."""
    results, to_hash, slots = [], [], []
    for raw in raws:
        trimmed = raw.strip()
        if is_sha256_hex(trimmed):
            results.append(trimmed.lower())
            continue
        try:
            to_hash.append(normalize(trimmed))
        except IdentityError as why:
            results.append(why)
            continue
        slots.append(len(results))
        results.append(None)
    for slot, digest in zip(slots, hash_all(to_hash) if to_hash else []):
        results[slot] = digest
    return results


# --- errors --------------------------------------------------------------------------------------


def retry_after_ms(value):
    """A `Retry-After` value in delta-seconds, as milliseconds; None when it is not a
    non-negative integer (an HTTP-date is not interpreted). Saturates at 2**32 - 1."""
    value = (value or "").strip()
    if not value or not all("0" <= c <= "9" for c in value):
        return None
    return min(int(value) * 1000, 2**32 - 1)


def http_failure(failure):
    """The `destination-error` for a request that got no response: timeouts, broken
    connections and over-large answers are `transient`; a request the host refused to send is
    `invalid-request`, since sending it again would be refused again."""
    if isinstance(failure, http_client.HttpError_Timeout):
        return types.DestinationError_Transient("no response within the host's request timeout")
    if isinstance(failure, http_client.HttpError_Connection):
        return types.DestinationError_Transient(f"connection failed: {excerpt(failure.value, 200)}")
    if isinstance(failure, http_client.HttpError_TooLarge):
        return types.DestinationError_Transient("the response was larger than the host allows")
    if isinstance(failure, http_client.HttpError_Denied):
        return types.DestinationError_InvalidRequest(f"the host refused the request: {excerpt(failure.value, 200)}")
    return types.DestinationError_Transient(f"the request failed: {type(failure).__name__}")


def status_error(response, message):
    """The default `destination-error` for a non-2xx `response`; `message` says what failed,
    in words for people. Match your partner's special cases first, then fall back to this:

    | status               | error                                     |
    |----------------------|-------------------------------------------|
    | 429                  | `rate-limited(Retry-After in ms, if any)` |
    | 401, 403             | `unauthorized`                            |
    | 404                  | `not-found`                               |
    | 408, 5xx             | `transient`                               |
    | 400, 409, 422, other | `invalid-request`                         |
    """
    status = response.status
    detail = f"HTTP {status}: {excerpt(message, MAX_MESSAGE_CHARS)}"
    if status == 429:
        return types.DestinationError_RateLimited(retry_after_ms(header(response.headers, "retry-after")))
    if status in (401, 403):
        return types.DestinationError_Unauthorized(detail)
    if status == 404:
        return types.DestinationError_NotFound(detail)
    if status == 408 or 500 <= status <= 599:
        return types.DestinationError_Transient(detail)
    return types.DestinationError_InvalidRequest(detail)


# --- HTTP ----------------------------------------------------------------------------------------


def header(headers, name):
    """The first value of header `name` (any case) in a list of (name, value) pairs, or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def bearer(token):
    """The `authorization` header for a bearer token, or none for a blank one. Never log it."""
    return [("authorization", f"Bearer {token}")] if token and token.strip() else []


def send(what, method, url, headers=(), body=b"", on_response=None):
    """Send one request through the host and return its 2xx response. `what` says what the
    request is for ("deliver the batch"), in words for logs and errors; `on_response`, if
    given, sees every response first, whatever its status (to read usage headers). No response
    raises `Err(http_failure(...))`; a non-2xx status raises `Err(status_error(...))`. Log
    lines name the method, status and `what`, never the URL (it may carry ids) or a header."""
    request = http_client.Request(method=method, url=url, headers=list(headers), body=body)
    try:
        response = http_client.send(request)
    except Err as err:
        warn(f"could not {what}: {type(err.value).__name__}")
        raise Err(http_failure(err.value)) from None
    if on_response is not None:
        on_response(response)
    if not 200 <= response.status < 300:
        warn(f"could not {what}: {method} answered HTTP {response.status}")
        raise Err(status_error(response, f"could not {what}"))
    return response


def json_body(response, what, default):
    """The JSON of a 2xx answer (`default` for an empty body). A body that is not JSON is
    `transient`: a partner answering garbage is usually a partner in trouble."""
    if not response.body.strip():
        return default
    try:
        return json.loads(response.body)
    except ValueError:
        raise Err(types.DestinationError_Transient(f"the answer {what} is not JSON")) from None


# --- logging and pacing --------------------------------------------------------------------------


def debug(message):
    """A debug line in the host's log, tagged with the plugin's name. Never log a secret."""
    log.log(log.Level.DEBUG, message)


def info(message):
    """An info line in the host's log."""
    log.log(log.Level.INFO, message)


def warn(message):
    """A warning in the host's log."""
    log.log(log.Level.WARN, message)


def error(message):
    """An error line in the host's log."""
    log.log(log.Level.ERROR, message)


def report_budget(used_percent, regain_after_ms=None):
    """Tell the host how much of the partner's rate budget is spent (0 to 100, clamped), and
    when it comes back, so the host slows down before the partner refuses. Not a number: no
    report."""
    if used_percent != used_percent or used_percent in (float("inf"), float("-inf")):
        return
    regain = None if regain_after_ms is None else max(0, min(int(regain_after_ms), 2**64 - 1))
    pacing.report_budget(pacing.Budget(used_percent=min(max(float(used_percent), 0.0), 100.0), regain_after_ms=regain))
