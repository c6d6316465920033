"""Fakes of the host's imports, for unit tests under plain CPython.

The generated bindings (`componentize-py bindings`, which `./build.sh test` writes to
`.bindings/`) define every record, variant and enum of the WIT as plain Python; only the
import functions need the component, and they raise `NotImplementedError` outside it.
`FakeHost` replaces them while a test runs: `http_client.send` answers from a script and
records each request, `hashing.sha256_hex` hashes with `hashlib` as the host does and records
each call's size, `log.log` and `pacing.report_budget` record what they are given.
"""

import hashlib
import unittest.mock

from componentize_py_types import Err
from wit_world.imports import hashing, http_client, log, pacing


def response(status=200, body=b"{}", headers=()):
    """A response the fake partner answers."""
    body = body.encode() if isinstance(body, str) else body
    return http_client.Response(status=status, headers=list(headers), body=body)


def _normalized(normalization, value):
    if normalization == hashing.Normalization.NONE:
        return value
    if normalization == hashing.Normalization.TRIM_LOWERCASE:
        return value.strip().lower()
    if normalization == hashing.Normalization.DIGITS_ONLY:
        return "".join(c for c in value if "0" <= c <= "9")
    return "".join(c for c in value if c.isalpha()).lower()


class FakeHost:
    """The host's imports, scripted. Use as a context manager:

        with FakeHost([response(429, headers=[("retry-after", "3")])]) as host:
            ...
        host.requests  # every request sent

    `answers` are, in order, a response, an `http_client.HttpError_...` (no response) or a
    function of the request returning either; when they run out, every request gets `200 {}`.
    """

    def __init__(self, answers=(), hash_answer=None):
        self.answers = list(answers)
        self.requests = []
        self.logs = []
        self.budgets = []
        self.hash_calls = []
        self.hash_answer = hash_answer
        self._patches = []

    def _send(self, request):
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else response()
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, http_client.Response):
            return answer
        raise Err(answer)

    def _sha256_hex(self, normalization, values):
        self.hash_calls.append(len(values))
        if self.hash_answer is not None:
            return self.hash_answer(normalization, values)
        return [hashlib.sha256(_normalized(normalization, v).encode()).hexdigest() for v in values]

    def _log(self, level, message):
        self.logs.append((level, message))

    def _report_budget(self, reading):
        self.budgets.append(reading)

    def __enter__(self):
        for module, name, fake in [
            (http_client, "send", self._send),
            (hashing, "sha256_hex", self._sha256_hex),
            (log, "log", self._log),
            (pacing, "report_budget", self._report_budget),
        ]:
            patch = unittest.mock.patch.object(module, name, fake)
            patch.start()
            self._patches.append(patch)
        return self

    def __exit__(self, *exc):
        for patch in reversed(self._patches):
            patch.stop()
        self._patches.clear()
        return False

    def header(self, index, name):
        """Header `name` of the `index`th request, or None."""
        return next((v for k, v in self.requests[index].headers if k.lower() == name), None)

    def log_text(self):
        """Every logged line, one per line."""
        return "\n".join(message for _, message in self.logs)
