"""`helpers`: the error mapping the host's retries depend on, identifier rules, hashing
through the host, and what reaches the log."""

import hashlib
import unittest

from componentize_py_types import Err
from wit_world.imports import http_client, types

import helpers
from tests.fakes import FakeHost, response

ALICE = hashlib.sha256(b"alice@example.com").hexdigest()


class StatusErrors(unittest.TestCase):
    def test_each_status_maps_to_the_error_the_host_expects(self):
        table = [
            (429, [], types.DestinationError_RateLimited(None)),
            (429, [("Retry-After", " 7 ")], types.DestinationError_RateLimited(7000)),
            (429, [("retry-after", "soon")], types.DestinationError_RateLimited(None)),
            (401, [], types.DestinationError_Unauthorized("HTTP 401: boom")),
            (403, [], types.DestinationError_Unauthorized("HTTP 403: boom")),
            (404, [], types.DestinationError_NotFound("HTTP 404: boom")),
            (408, [], types.DestinationError_Transient("HTTP 408: boom")),
            (500, [], types.DestinationError_Transient("HTTP 500: boom")),
            (503, [], types.DestinationError_Transient("HTTP 503: boom")),
            (599, [], types.DestinationError_Transient("HTTP 599: boom")),
            (400, [], types.DestinationError_InvalidRequest("HTTP 400: boom")),
            (409, [], types.DestinationError_InvalidRequest("HTTP 409: boom")),
            (422, [], types.DestinationError_InvalidRequest("HTTP 422: boom")),
            (302, [], types.DestinationError_InvalidRequest("HTTP 302: boom")),
        ]
        for status, headers, expected in table:
            with self.subTest(status=status, headers=headers):
                self.assertEqual(helpers.status_error(response(status, headers=headers), "boom"), expected)

    def test_retry_after(self):
        table = [("0", 0), ("120", 120_000), (" 2 ", 2000), ("", None), (None, None), ("-1", None), ("1.5", None),
                 ("Wed, 21 Oct 2015 07:28:00 GMT", None), ("5000000", 2**32 - 1), ("9" * 30, 2**32 - 1)]
        for value, expected in table:
            with self.subTest(value=value):
                self.assertEqual(helpers.retry_after_ms(value), expected)

    def test_long_partner_messages_are_cut(self):
        error = helpers.status_error(response(400), "x" * 1000)
        self.assertLess(len(error.value), 320)

    def test_no_response(self):
        table = [
            (http_client.HttpError_Timeout(), types.DestinationError_Transient),
            (http_client.HttpError_TooLarge(), types.DestinationError_Transient),
            (http_client.HttpError_Connection("reset by peer"), types.DestinationError_Transient),
            (http_client.HttpError_Denied("host not allowed: evil.example"), types.DestinationError_InvalidRequest),
        ]
        for failure, kind in table:
            with self.subTest(failure=failure):
                self.assertIsInstance(helpers.http_failure(failure), kind)
        self.assertEqual(
            helpers.http_failure(http_client.HttpError_Denied("host not allowed: evil.example")).value,
            "the host refused the request: host not allowed: evil.example",
        )


class Send(unittest.TestCase):
    def test_a_2xx_answer_is_returned(self):
        with FakeHost([response(201, b'{"ok":true}')]) as host:
            answer = helpers.send("list things", "GET", "https://api.example/things?token=s3cret", helpers.bearer("tok"))
        self.assertEqual(answer.status, 201)
        self.assertEqual(host.header(0, "authorization"), "Bearer tok")

    def test_errors_are_mapped_and_logged_without_url_or_token(self):
        with FakeHost([response(404), http_client.HttpError_Timeout()]) as host:
            with self.assertRaises(Err) as missing:
                helpers.send("read it", "GET", "https://api.example/x?token=s3cret", helpers.bearer("tok-123"))
            with self.assertRaises(Err) as slow:
                helpers.send("read it", "GET", "https://api.example/x?token=s3cret", helpers.bearer("tok-123"))
        self.assertEqual(missing.exception.value, types.DestinationError_NotFound("HTTP 404: could not read it"))
        self.assertIsInstance(slow.exception.value, types.DestinationError_Transient)
        self.assertIn("could not read it", host.log_text())
        self.assertNotIn("s3cret", host.log_text())
        self.assertNotIn("tok-123", host.log_text())

    def test_on_response_sees_every_answer(self):
        seen = []
        with FakeHost([response(429, headers=[("retry-after", "3")])]):
            with self.assertRaises(Err) as throttled:
                helpers.send("go", "POST", "https://api.example/", on_response=lambda r: seen.append(r.status))
        self.assertEqual(seen, [429])
        self.assertEqual(throttled.exception.value, types.DestinationError_RateLimited(3000))

    def test_json_body(self):
        self.assertEqual(helpers.json_body(response(200, b" "), "x", {"empty": True}), {"empty": True})
        self.assertEqual(helpers.json_body(response(200, b'{"a":1}'), "x", {}), {"a": 1})
        with self.assertRaises(Err) as garbage:
            helpers.json_body(response(200, b"<html>"), "to the search", {})
        self.assertIsInstance(garbage.exception.value, types.DestinationError_Transient)

    def test_blank_tokens_send_no_authorization(self):
        self.assertEqual(helpers.bearer("  "), [])
        self.assertEqual(helpers.bearer(None), [])


class Identity(unittest.TestCase):
    def test_emails(self):
        self.assertEqual(helpers.normalize_email(" Alice@Example.COM "), "alice@example.com")
        table = [
            ("", "the value is empty"),
            ("   ", "the value is empty"),
            ("bob", "'bob' has no '@'"),
            ("bob@", "'bob@' has no domain"),
            ("@example.com", "'@example.com' has nothing before the '@'"),
            ("a@b@example.com", "'a@b@example.com' has more than one '@'"),
            ("bob@localhost", "'bob@localhost' has no dot in its domain"),
            ("bob@a..com", "'bob@a..com' has an empty part in its domain"),
            ("bob@example.c", "'bob@example.c' has a one-letter top-level domain"),
            ("b ob@example.com", "'b ob@example.com' contains whitespace"),
            ("a" * 300 + "@example.com", "'" + "a" * 40 + "…' is longer than 254 characters"),
        ]
        for raw, reason in table:
            with self.subTest(raw=raw):
                with self.assertRaises(helpers.IdentityError) as err:
                    helpers.normalize_email(raw)
                self.assertEqual(str(err.exception), reason)

    def test_device_ids(self):
        self.assertEqual(
            helpers.normalize_device_id(" 6D92078A-8246-4BA4-AE5B-76104861E7DC "), "6d92078a-8246-4ba4-ae5b-76104861e7dc"
        )
        for raw in ["", "not-a-uuid", "6d92078a82464ba4ae5b76104861e7dc", "6d92078a-8246-4ba4-ae5b-76104861e7dg",
                    "00000000-0000-0000-0000-000000000000"]:
            with self.subTest(raw=raw):
                with self.assertRaises(helpers.IdentityError):
                    helpers.normalize_device_id(raw)

    def test_sha256_hex(self):
        self.assertTrue(helpers.is_sha256_hex(ALICE))
        self.assertTrue(helpers.is_sha256_hex(ALICE.upper()))
        self.assertFalse(helpers.is_sha256_hex(ALICE[:-1]))
        self.assertFalse(helpers.is_sha256_hex(ALICE[:-1] + "g"))


class Hashing(unittest.TestCase):
    def test_values_are_hashed_by_the_host_in_chunks(self):
        values = [f"user{i}@example.com" for i in range(helpers.HOST_HASH_CHUNK * 2 + 5)]
        with FakeHost() as host:
            digests = helpers.hash_all(values)
        self.assertEqual(host.hash_calls, [helpers.HOST_HASH_CHUNK, helpers.HOST_HASH_CHUNK, 5])
        self.assertEqual(digests[-1], hashlib.sha256(values[-1].encode()).hexdigest())
        self.assertEqual(len(digests), len(values))

    def test_a_short_answer_from_the_host_is_hashed_here(self):
        with FakeHost(hash_answer=lambda normalization, values: values[:1]):
            self.assertEqual(helpers.hash_all(["alice@example.com", "x"])[0], ALICE)

    def test_hashed_many_validates_passes_hashes_through_and_keeps_order(self):
        raws = [" Alice@Example.COM ", "bob@", "  " + ALICE.upper() + " ", "carol@example.org"]
        with FakeHost() as host:
            out = helpers.hashed_many(raws, helpers.normalize_email)
        self.assertEqual(out[0], ALICE)
        self.assertIsInstance(out[1], helpers.IdentityError)
        self.assertEqual(out[2], ALICE)
        self.assertEqual(out[3], hashlib.sha256(b"carol@example.org").hexdigest())
        # Only the two values that needed it were sent to the host, in one call.
        self.assertEqual(host.hash_calls, [2])

    def test_nothing_to_hash_makes_no_host_call(self):
        with FakeHost() as host:
            self.assertEqual(helpers.hashed_many(["", ALICE], helpers.normalize_email)[1], ALICE)
        self.assertEqual(host.hash_calls, [])


class Pacing(unittest.TestCase):
    def test_readings_are_clamped_and_nonsense_dropped(self):
        with FakeHost() as host:
            helpers.report_budget(85.5, 3000)
            helpers.report_budget(250, None)
            helpers.report_budget(-3, None)
            helpers.report_budget(float("nan"))
            helpers.report_budget(float("inf"))
        self.assertEqual([(b.used_percent, b.regain_after_ms) for b in host.budgets], [(85.5, 3000), (100.0, None), (0.0, None)])

    def test_excerpt(self):
        self.assertEqual(helpers.excerpt("abc", 3), "abc")
        self.assertEqual(helpers.excerpt("abcd", 3), "abc…")
        self.assertEqual(helpers.excerpt("ééééé", 2), "éé…")


if __name__ == "__main__":
    unittest.main()
