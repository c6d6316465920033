"""`app`: the webhook destination's manifest, preparation, batches and audiences, against a
fake host."""

import hashlib
import hmac
import json
import unittest

from componentize_py_types import Err
from wit_world.imports import http_client, types

import app
from tests.fakes import FakeHost, response

ALICE = hashlib.sha256(b"alice@example.com").hexdigest()
DEVICE = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
SECRET = "s3cret-signing-key"
TOKEN = "tok-0123456789"


def config(base_url="https://hooks.example.com/in", secret=SECRET, settings=()):
    return types.PluginConfig(base_url=base_url, client_id=None, client_secret=secret, settings=list(settings))


def creds(token=TOKEN):
    return types.Credentials(access_token=token, refresh_token=None, expires_at=None, renewable_until=None, scopes=[])


def raw(key, *identifiers, consent=None):
    return types.RawUser(key=key, identifiers=[types.Identifier(kind=k, value=v) for k, v in identifiers], consent=consent)


def prepared(key, *identifiers):
    return types.PreparedUser(key=key, identifiers=[types.Identifier(kind=k, value=v) for k, v in identifiers], consent=None)


def batch(users, id="batch-1", attempt=1):
    return types.Batch(id=id, attempt=attempt, users=users)


class Manifest(unittest.TestCase):
    def test_pure_and_derived_from_the_base_url(self):
        m = app.manifest(config("https://hooks.example.com:8443/in"))
        self.assertEqual(m, app.manifest(config("https://hooks.example.com:8443/in")))
        self.assertEqual(m.default_hosts, ["hooks.example.com"])
        self.assertEqual(app.manifest(config(None)).default_hosts, [])
        self.assertEqual(m.limits.max_batch_size, app.MAX_BATCH_SIZE)
        self.assertNotIn(types.Features.ASYNCHRONOUS, m.features)


class Prepare(unittest.TestCase):
    def run_prepare(self, fields, users):
        with FakeHost() as host:
            out = app.prepare_users(fields, users)
        return out, host

    def test_values_are_normalised_and_hashed_by_the_host(self):
        users = [raw("u1", ("email", " Alice@Example.COM "), ("idfa", DEVICE.upper()), ("external-id", " crm-1 "))]
        out, host = self.run_prepare(["email", "idfa", "external-id"], users)
        self.assertEqual(
            out,
            [types.Preparation_Ready(prepared(
                "u1", ("email", ALICE), ("idfa", hashlib.sha256(DEVICE.encode()).hexdigest()), ("external-id", "crm-1")
            ))],
        )
        self.assertEqual(sorted(host.hash_calls), [1, 1])
        self.assertEqual(host.requests, [])

    def test_only_selected_supported_fields_are_kept(self):
        users = [raw("u1", ("email", "alice@example.com"), ("phone", "+15550001"), ("external-id", "crm-1"))]
        out, _ = self.run_prepare(["external-id", "phone"], users)
        self.assertEqual(out, [types.Preparation_Ready(prepared("u1", ("external-id", "crm-1")))])
        out, _ = self.run_prepare(["phone"], users)
        self.assertEqual(out, [types.Preparation_NotSynced("none of the selected identifiers is present")])

    def test_unusable_users_say_why(self):
        users = [raw("u1", ("email", "bob@"), ("email", "x"), ("idfa", "nope"), ("external-id", " "), ("email", "y"))]
        [out], _ = self.run_prepare(["email", "idfa", "external-id"], users)
        self.assertIsInstance(out, types.Preparation_NotSynced)
        self.assertIn("no usable email: 'bob@' has no domain", out.value)
        self.assertIn("and 2 more", out.value)

    def test_already_hashed_passes_through_duplicates_collapse_and_consent_is_kept(self):
        consent = types.Consent(ad_user_data=types.ConsentStatus.GRANTED, ad_personalization=types.ConsentStatus.DENIED)
        users = [raw("u1", ("email", ALICE.upper()), ("email", "alice@example.com"), consent=consent)]
        [out], _ = self.run_prepare(["email"], users)
        self.assertEqual(out.value.identifiers, [types.Identifier(kind="email", value=ALICE)])
        self.assertEqual(out.value.consent, consent)

    def test_one_result_per_user_in_order(self):
        users = [raw(f"u{i}", ("email", f"user{i}@example.com")) for i in range(50)] + [raw("empty")]
        out, _ = self.run_prepare(["email"], users)
        self.assertEqual([p.value.key for p in out[:50]], [f"u{i}" for i in range(50)])
        self.assertIsInstance(out[50], types.Preparation_NotSynced)


class Delivery(unittest.TestCase):
    def test_a_batch_is_one_signed_post(self):
        users = [prepared("u1", ("email", ALICE)), prepared("u2", ("external-id", "crm-2"))]
        answer = response(200, json.dumps({"rejected": [{"key": "u2", "reason": "unknown id"}],
                                           "unattributed": [{"count": 1, "reason": "bad", "samples": ["x"]},
                                                            {"count": True}, {"count": -1}]}))
        with FakeHost([answer]) as host:
            done = app.write_users(config(), creds(), "default", types.AudienceTarget_Existing("vips"), "add",
                                   batch(users, attempt=2))
        [request] = host.requests
        self.assertEqual((request.method, request.url), ("POST", "https://hooks.example.com/in/audience-batches"))
        body = json.loads(request.body)
        self.assertEqual(body["operation"], "add")
        self.assertEqual(body["audience"], "vips")
        self.assertEqual(body["users"][0], {"key": "u1", "identifiers": [{"kind": "email", "value": ALICE}]})
        expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        self.assertEqual(host.header(0, "x-audience-signature"), expected)
        self.assertEqual(host.header(0, "x-audience-batch-id"), "batch-1")
        self.assertEqual(host.header(0, "x-audience-attempt"), "2")
        self.assertEqual(host.header(0, "authorization"), f"Bearer {TOKEN}")
        outcome = done.value
        self.assertEqual(outcome.rejected, [types.RejectedUser(key="u2", reason="unknown id")])
        self.assertEqual([u.count for u in outcome.unattributed], [1])
        self.assertNotIn(TOKEN, host.log_text())
        self.assertNotIn(SECRET, host.log_text())

    def test_the_path_setting_moves_the_endpoint(self):
        with FakeHost() as host:
            app.write_users(config(settings=[("path", "hooks")]), creds(), "a", types.AudienceTarget_Existing("v"),
                            "remove", batch([prepared("u1", ("email", ALICE))]))
        self.assertEqual(host.requests[0].url, "https://hooks.example.com/in/hooks")
        self.assertEqual(json.loads(host.requests[0].body)["operation"], "remove")

    def test_too_big_a_batch_is_refused_without_a_request(self):
        users = [prepared(f"u{i}", ("email", ALICE)) for i in range(app.MAX_BATCH_SIZE + 1)]
        with FakeHost() as host:
            with self.assertRaises(Err) as refused:
                app.write_users(config(), creds(), "a", types.AudienceTarget_Existing("v"), "add", batch(users))
        self.assertIsInstance(refused.exception.value, types.DestinationError_InvalidRequest)
        self.assertEqual(host.requests, [])

    def test_a_throttled_answer_is_rate_limited_and_its_budget_reported(self):
        throttled = response(429, headers=[("Retry-After", "7"), ("x-budget-used-percent", "100"), ("x-budget-regain-ms", "7000")])
        with FakeHost([throttled]) as host:
            with self.assertRaises(Err) as err:
                app.write_users(config(), creds(), "a", types.AudienceTarget_Existing("v"), "add",
                                batch([prepared("u1", ("email", ALICE))]))
        self.assertEqual(err.exception.value, types.DestinationError_RateLimited(7000))
        self.assertEqual([(b.used_percent, b.regain_after_ms) for b in host.budgets], [(100.0, 7000)])

    def test_missing_configuration_says_what_to_set(self):
        with FakeHost():
            with self.assertRaises(Err) as err:
                app.write_users(config(secret=None), creds(), "a", types.AudienceTarget_Existing("v"), "add",
                                batch([prepared("u1", ("email", ALICE))]))
        self.assertIn("set `client-secret`", err.exception.value.value)

    def test_create_target_creates_the_audience_first(self):
        spec = types.AudienceSpec(id=None, name="VIPs", identifiers=["email"], description=None, create_if_missing=True)
        with FakeHost([response(200, '{"id":"aud-9","name":"VIPs","created":true}'), response(200)]) as host:
            done = app.write_users(config(), creds(), "a", types.AudienceTarget_Create(spec), "add",
                                   batch([prepared("u1", ("email", ALICE))]))
        self.assertEqual([r.url.rsplit("/", 1)[-1] for r in host.requests], ["audiences", "audience-batches"])
        self.assertEqual(json.loads(host.requests[1].body)["audience"], "aud-9")
        self.assertEqual(done.value.created.id, "aud-9")


class Audiences(unittest.TestCase):
    def spec(self, id=None, create=False, identifiers=("email",)):
        return types.AudienceSpec(id=id, name="VIPs", identifiers=list(identifiers), description=None,
                                  create_if_missing=create)

    def test_search_pages_and_reads_audiences(self):
        page = {"audiences": [{"id": "a1", "name": "VIPs", "size": 120, "state": "ready"}, {"name": "no id"}],
                "next_cursor": "c2"}
        with FakeHost([response(200, json.dumps(page))]) as host:
            result = app.search(config(), creds(), "acct 1", "v i", None)
        self.assertEqual(host.requests[0].url, "https://hooks.example.com/in/audiences?account=acct%201&query=v%20i")
        self.assertEqual([a.id for a in result.audiences], ["a1"])
        self.assertEqual(result.audiences[0].size, types.AudienceSize(lower=120, upper=120))
        self.assertEqual(result.audiences[0].state, types.AudienceState.READY)
        self.assertEqual(result.next_cursor, "c2")

    def test_check_target_reports_problems_without_creating(self):
        with FakeHost([response(404)]) as host:
            problems = app.check_target(config(), creds(), "a", self.spec(id="gone", identifiers=["phone"]))
        self.assertEqual([p.part for p in problems], [types.TargetPart.IDENTIFIERS, types.TargetPart.AUDIENCE])
        self.assertEqual([r.method for r in host.requests], ["GET"])

        with FakeHost([response(200, '{"audiences":[]}')]) as host:
            problems = app.check_target(config(), creds(), "a", self.spec())
        self.assertEqual([p.part for p in problems], [types.TargetPart.AUDIENCE])

        with FakeHost([response(200, '{"id":"a1","name":"VIPs","state":"unusable","status":"flagged"}')]):
            problems = app.check_target(config(), creds(), "a", self.spec(id="a1"))
        self.assertIn("flagged", problems[0].message)

    def test_other_failures_propagate(self):
        with FakeHost([response(503)]):
            with self.assertRaises(Err) as err:
                app.check_target(config(), creds(), "a", self.spec(id="a1"))
        self.assertIsInstance(err.exception.value, types.DestinationError_Transient)

    def test_the_exports(self):
        plugin = app.Plugin()
        with self.assertRaises(Err) as err:
            plugin.authorize(config(), types.Grant_Refresh(creds()))
        self.assertIsInstance(err.exception.value, types.DestinationError_Unauthorized)
        with self.assertRaises(Err) as err:
            plugin.check_submission(config(), creds(), "a", types.AudienceTarget_Existing("v"), "s1")
        self.assertIsInstance(err.exception.value, types.DestinationError_InvalidRequest)
        self.assertEqual(plugin.list_accounts(config(), creds(), None).accounts[0].id, "default")
        with FakeHost([http_client.HttpError_Timeout()]):
            with self.assertRaises(Err) as err:
                plugin.upsert_audience(config(), creds(), "a", self.spec(create=True))
        self.assertIsInstance(err.exception.value, types.DestinationError_Transient)


if __name__ == "__main__":
    unittest.main()
