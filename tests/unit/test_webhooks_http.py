"""Webhook calls against real local HTTP(S) servers: status classes, timeouts, retries, redirects, TLS and gates."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Response

from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.runner import run_webhook
from ansible_collections.progressive.delivery.plugins.module_utils.webhooks.spec import spec_from_params


def spec(url, **overrides):
    params = {"url": url, "name": "podinfo", "namespace": "test", "timeout": 5, "gate_poll": 0.05}
    params.update(overrides)
    return spec_from_params(params)


def call(url, check_mode=False, **overrides):
    return run_webhook(spec(url, **overrides), check_mode=check_mode)


def posted_json(server, index=0):
    request, _response = server.log[index]
    return json.loads(request.get_data())


# ---------------------------------------------------------------- status classes


@pytest.mark.parametrize("status", [200, 201, 202])
def test_200_to_202_pass(httpserver, status):
    httpserver.expect_request("/", method="POST").respond_with_data("ok", status=status)
    run = call(httpserver.url_for("/"))
    assert not run.failed
    assert run.result["passed"] is True
    assert run.result["outcome"] == "passed"
    assert run.result["status"] == status
    assert run.result["attempts"] == 1
    assert run.result["changed"] is True


@pytest.mark.parametrize("status", [203, 204, 400, 401, 403, 404, 409, 422, 500, 502, 503])
def test_other_statuses_fail_with_the_body_as_reason(httpserver, status):
    httpserver.expect_request("/", method="POST").respond_with_data("smoke test failed: 3 of 10 requests", status=status)
    run = call(httpserver.url_for("/"), type="pre-rollout")
    assert run.failed
    assert run.result["passed"] is False
    assert run.result["outcome"] == "failed"
    assert run.result["status"] == status
    assert f"HTTP {status}" in run.msg
    assert "only 200-202 pass" in run.msg
    if status != 204:
        assert "smoke test failed: 3 of 10 requests" in run.msg
    assert "podinfo.test" in run.msg
    # an HTTP answer is never retried: the receiver has decided
    assert run.result["attempts"] == 1
    assert len(httpserver.log) == 1


def test_payload_headers_and_content_type_match_flagger(httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=202)
    run = call(
        httpserver.url_for("/hook"),
        type="rollout",
        phase="Progressing",
        checksum="5f5697644f",
        metadata={"type": "cmd", "cmd": "hey -z 1m", "count": 3},
        headers={"X-Hook-Token": "abc"},
    )
    assert not run.failed
    request, _response = httpserver.log[0]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Hook-Token"] == "abc"
    assert json.loads(request.get_data()) == {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Progressing",
        "checksum": "5f5697644f",
        "metadata": {"type": "cmd", "cmd": "hey -z 1m", "count": "3"},
    }
    assert run.result["metadata_keys"] == ["cmd", "count", "type"]


def test_html_error_pages_do_not_flood_the_result(httpserver):
    page = "<html><head><title>503 Service Unavailable</title></head><body>" + "<p>upstream down</p>" * 5000 + "</body></html>"
    httpserver.expect_request("/").respond_with_data(page, status=503, content_type="text/html")
    run = call(httpserver.url_for("/"), max_body=300)
    assert run.failed
    assert run.result["body_truncated"] is True
    assert len(run.result["body"]) <= 300
    assert run.result["body"].startswith("HTML page '503 Service Unavailable'")
    assert "<p>" not in run.msg
    assert len(run.msg) < 700


def test_a_streamed_body_without_length_is_read_only_so_far(httpserver):
    def endless(_request):
        return Response((b"line of log output\n" * 512 for _ in range(200)), status=500, content_type="text/plain")

    httpserver.expect_request("/").respond_with_handler(endless)
    run = call(httpserver.url_for("/"), max_body=200)
    assert run.failed
    assert run.result["body_truncated"] is True
    assert run.result["body"].endswith("[cut, more than 65536 bytes]")
    assert len(run.result["body"]) <= 200


# ---------------------------------------------------------------- timeouts and retries


@pytest.fixture
def slow_server():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def _slow(seconds, status=200):
    def handler(_request):
        time.sleep(seconds)
        return Response("late", status=status)

    return handler


def test_a_slow_side_effect_hook_times_out_once_and_is_not_repeated(slow_server):
    slow_server.expect_request("/").respond_with_handler(_slow(1.5))
    run = call(slow_server.url_for("/"), type="rollout", timeout="300ms", retries=3)
    assert run.failed
    assert run.result["outcome"] == "error"
    assert run.result["error_kind"] == "timeout"
    assert run.result["attempts"] == 1
    assert run.result["status"] is None
    assert "timeout 0.3s" in run.msg
    assert run.result["elapsed"] < 1.5


def test_a_slow_gate_is_asked_again_because_asking_is_harmless(slow_server):
    slow_server.expect_request("/gate/check").respond_with_handler(_slow(1.0))
    run = call(slow_server.url_for("/gate/check"), type="confirm-rollout", timeout=0.2, retries=2)
    assert not run.failed
    assert run.result["outcome"] == "error"
    assert run.result["error_kind"] == "timeout"
    assert run.result["attempts"] == 3
    assert run.warnings and "could not be asked" in run.warnings[0]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_retried_with_backoff():
    url = f"http://127.0.0.1:{_free_port()}/"
    run = call(url, retries=2)
    assert run.failed
    assert run.result["error_kind"] == "connection"
    assert run.result["error"] == "connection refused"
    assert run.result["attempts"] == 3
    # backoff 0.5 s then 1 s between the three attempts
    assert run.result["elapsed"] >= 1.5
    assert "after 3 attempts" in run.msg


def test_retries_zero_means_one_attempt():
    run = call(f"http://127.0.0.1:{_free_port()}/", retries=0)
    assert run.result["attempts"] == 1
    assert "only attempt" in run.msg


class FlakyServer:
    """Drops the first connections without answering, then answers like a webhook receiver."""

    def __init__(self, drops):
        self.drops = drops
        self.connections = 0
        self.bodies = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d/" % self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                data = self._read_request(conn)
                if self.connections <= self.drops:
                    continue
                self.bodies.append(data.split(b"\r\n\r\n", 1)[1])
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    @staticmethod
    def _read_request(conn):
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _sep, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def close(self):
        self.sock.close()


def test_a_dropped_connection_is_retried_and_then_passes():
    server = FlakyServer(drops=2)
    try:
        run = call(server.url, retries=2)
    finally:
        server.close()
    assert not run.failed, run.msg
    assert run.result["attempts"] == 3
    assert server.connections == 3
    assert json.loads(server.bodies[0])["name"] == "podinfo"


def test_retries_stop_at_the_limit_for_dropped_connections():
    server = FlakyServer(drops=5)
    try:
        run = call(server.url, retries=1)
    finally:
        server.close()
    assert run.failed
    assert run.result["attempts"] == 2
    assert run.result["error_kind"] == "connection"
    assert "closed the connection" in run.result["error"] or "aborted" in run.result["error"] or "reset" in run.result["error"]


# ---------------------------------------------------------------- redirects


def test_307_and_308_to_the_same_host_keep_the_post_and_payload(httpserver):
    httpserver.expect_request("/old", method="POST").respond_with_data("", status=307, headers={"Location": "/mid"})
    httpserver.expect_request("/mid", method="POST").respond_with_data("", status=308, headers={"Location": "/new"})
    httpserver.expect_request("/new", method="POST").respond_with_data("accepted", status=202)
    run = call(httpserver.url_for("/old"), metadata={"cmd": "x"})
    assert not run.failed, run.msg
    assert run.result["redirected_to"] == httpserver.url_for("/new")
    assert run.result["attempts"] == 3
    assert posted_json(httpserver, 2)["metadata"] == {"cmd": "x"}


@pytest.mark.parametrize("status", [301, 302, 303])
def test_redirects_that_drop_the_payload_are_reported_not_followed(httpserver, status):
    httpserver.expect_request("/old").respond_with_data("", status=status, headers={"Location": "/new"})
    run = call(httpserver.url_for("/old"))
    assert run.failed
    assert run.result["status"] == status
    assert len(httpserver.log) == 1
    assert httpserver.url_for("/new") in run.msg
    assert "set url to the final address" in run.msg


def test_no_redirect_is_followed_when_disabled(httpserver):
    httpserver.expect_request("/old").respond_with_data("", status=307, headers={"Location": "/new"})
    run = call(httpserver.url_for("/old"), follow_redirects=False)
    assert run.failed
    assert run.result["status"] == 307
    assert len(httpserver.log) == 1


def test_redirects_to_another_host_are_refused_and_headers_stay_home(httpserver):
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request("/steal").respond_with_data("thanks", status=200)
        # same port, other host name: "localhost" is not the "127.0.0.1" the task named
        target = other.url_for("/steal").replace("127.0.0.1", "localhost")
        httpserver.expect_request("/").respond_with_data("", status=307, headers={"Location": target})
        run = call(httpserver.url_for("/").replace("localhost", "127.0.0.1"), headers={"Authorization": "Bearer sekrit"})
        assert run.failed
        assert run.result["error_kind"] == "redirect"
        assert "another host" in run.msg
        assert other.log == []
    finally:
        other.stop()


def test_a_redirect_loop_ends(httpserver):
    httpserver.expect_request("/loop").respond_with_data("", status=307, headers={"Location": "/loop"})
    run = call(httpserver.url_for("/loop"))
    assert run.failed
    assert run.result["error_kind"] == "redirect"
    assert "more than 5 redirects" in run.msg
    assert len(httpserver.log) == 6


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "webhook test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path = directory / "server.pem"
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / "server.key"
    key_path.write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    server.ca_path = str(ca_path)
    yield server
    server.stop()


def test_tls_is_verified_by_default_and_a_private_ca_fails(tls_server):
    tls_server.expect_request("/").respond_with_data("ok")
    url = tls_server.url_for("/")
    assert url.startswith("https://")
    run = call(url, retries=2)
    tls_server.clear()
    assert run.failed
    assert run.result["error_kind"] == "tls"
    assert "ca_cert" in run.msg
    # a certificate problem does not go away by asking again
    assert run.result["attempts"] == 1


def test_tls_passes_with_the_signing_ca(tls_server):
    tls_server.expect_request("/").respond_with_data("ok")
    run = call(tls_server.url_for("/"), ca_cert=tls_server.ca_path)
    tls_server.clear()
    assert not run.failed, run.msg
    assert run.result["status"] == 200


def test_tls_verification_can_be_switched_off(tls_server):
    tls_server.expect_request("/").respond_with_data("ok")
    run = call(tls_server.url_for("/"), validate_certs=False)
    tls_server.clear()
    assert not run.failed, run.msg


def test_a_wrong_ca_still_fails(tls_server, tmp_path):
    other_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unrelated CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    other = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(other_key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(other_key, hashes.SHA256())
    )
    path = tmp_path / "other.pem"
    path.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    tls_server.expect_request("/").respond_with_data("ok")
    run = call(tls_server.url_for("/"), ca_cert=str(path))
    tls_server.clear()
    assert run.failed
    assert run.result["error_kind"] == "tls"
    assert str(path) in run.msg


# ---------------------------------------------------------------- gates


class CountingGate:
    """Answers like Flagger's /gate/check: 403 Forbidden until the n-th question, then 200 Approved."""

    def __init__(self, opens_at):
        self.opens_at = opens_at
        self.calls = 0

    def __call__(self, _request):
        self.calls += 1
        if self.opens_at and self.calls >= self.opens_at:
            return Response("Approved", status=200)
        return Response("Forbidden", status=403)


@pytest.mark.parametrize("hook_type", ["confirm-rollout", "confirm-traffic-increase", "confirm-promotion"])
def test_a_closed_gate_is_an_answer_not_a_failure(httpserver, hook_type):
    httpserver.expect_request("/gate/check").respond_with_handler(CountingGate(opens_at=0))
    run = call(httpserver.url_for("/gate/check"), type=hook_type)
    assert not run.failed
    assert run.result["passed"] is False
    assert run.result["outcome"] == "closed"
    assert run.result["status"] == 403
    assert run.result["body"] == "Forbidden"
    assert run.result["changed"] is False
    assert run.result["polls"] == 1


def test_waiting_gate_returns_when_it_opens(httpserver):
    gate = CountingGate(opens_at=4)
    httpserver.expect_request("/gate/check").respond_with_handler(gate)
    run = call(httpserver.url_for("/gate/check"), type="confirm-promotion", wait=True, gate_timeout=30, gate_poll=0.1)
    assert not run.failed, run.msg
    assert run.result["passed"] is True
    assert run.result["outcome"] == "passed"
    assert run.result["polls"] == 4
    assert gate.calls == 4
    assert run.result["gate_waited"] >= 0.3
    assert run.result["gate_timed_out"] is False


@pytest.mark.parametrize(
    ("on_timeout", "failed", "outcome", "rollback"),
    [("fail", True, "timeout", False), ("rollback", False, "rollback", True), ("wait", False, "waiting", False)],
)
def test_gate_timeout_means_what_on_gate_timeout_says(httpserver, on_timeout, failed, outcome, rollback):
    httpserver.expect_request("/gate/check").respond_with_handler(CountingGate(opens_at=0))
    run = call(httpserver.url_for("/gate/check"), type="confirm-rollout", wait=True, gate_timeout="500ms", gate_poll=0.1,
               on_gate_timeout=on_timeout)
    assert run.failed is failed
    assert run.result["outcome"] == outcome
    assert run.result["gate_timed_out"] is True
    assert run.result["passed"] is False
    assert run.result["rollback_requested"] is rollback
    assert run.result["gate_waited"] >= 0.5
    assert run.result["polls"] >= 3
    if failed:
        assert "stayed closed for gate_timeout 0.5s" in run.msg
        assert "/gate/open" in run.msg


def test_rollback_hook_2xx_means_roll_back(httpserver):
    httpserver.expect_request("/rollback/check").respond_with_data("Approved", status=200)
    run = call(httpserver.url_for("/rollback/check"), type="rollback")
    assert not run.failed
    assert run.result["rollback_requested"] is True
    assert run.result["passed"] is True
    assert run.result["outcome"] == "rollback"


def test_rollback_hook_refusal_means_carry_on(httpserver):
    httpserver.expect_request("/rollback/check").respond_with_data("Forbidden", status=403)
    run = call(httpserver.url_for("/rollback/check"), type="rollback")
    assert not run.failed
    assert run.result["rollback_requested"] is False
    assert run.result["outcome"] == "closed"


def test_gate_wait_survives_a_receiver_that_is_down_for_a_while():
    port = _free_port()
    run = call(f"http://127.0.0.1:{port}/gate/check", type="confirm-rollout", wait=True, gate_timeout=0.3, gate_poll=0.1,
               retries=0, on_gate_timeout="fail")
    assert run.failed
    assert run.result["outcome"] == "timeout"
    assert "connection refused" in run.msg


# ---------------------------------------------------------------- check mode


@pytest.mark.parametrize("hook_type", ["pre-rollout", "rollout", "post-rollout", "event"])
def test_check_mode_skips_hooks_with_side_effects(httpserver, hook_type):
    httpserver.expect_request("/").respond_with_data("ok")
    run = call(httpserver.url_for("/"), check_mode=True, type=hook_type)
    assert not run.failed
    assert run.result["skipped"] is True
    assert run.result["outcome"] == "skipped"
    assert run.result["passed"] is None
    assert httpserver.log == []
    assert "POST " + httpserver.url_for("/") in run.diff_after


@pytest.mark.parametrize("hook_type", ["confirm-rollout", "confirm-promotion", "rollback"])
def test_check_mode_still_asks_gates(httpserver, hook_type):
    httpserver.expect_request("/gate").respond_with_data("Approved")
    run = call(httpserver.url_for("/gate"), check_mode=True, type=hook_type)
    assert run.result["skipped"] is False
    assert run.result["passed"] is True
    assert len(httpserver.log) == 1


def test_a_rollback_request_ends_a_gate_wait(httpserver):
    gate = CountingGate(opens_at=0)
    rollback = CountingGate(opens_at=3)
    httpserver.expect_request("/gate/check").respond_with_handler(gate)
    httpserver.expect_request("/rollback/check").respond_with_handler(rollback)
    run = call(httpserver.url_for("/gate/check"), type="confirm-promotion", wait=True, gate_timeout=30, gate_poll=0.05,
               rollback_url=httpserver.url_for("/rollback/check"))
    assert not run.failed, run.msg
    assert run.result["outcome"] == "rollback"
    assert run.result["rollback_requested"] is True
    assert run.result["passed"] is False
    assert run.result["gate_timed_out"] is False
    assert gate.calls == 3 and rollback.calls == 3
    assert run.result["attempts"] == 6
    rollback_bodies = [json.loads(request.get_data()) for request, _response in httpserver.log if request.path == "/rollback/check"]
    assert {body["phase"] for body in rollback_bodies} == {"Waiting"}
    assert rollback_bodies[0]["name"] == "podinfo"


def test_an_opening_gate_wins_over_a_quiet_rollback_hook(httpserver):
    httpserver.expect_request("/gate/check").respond_with_handler(CountingGate(opens_at=2))
    httpserver.expect_request("/rollback/check").respond_with_handler(CountingGate(opens_at=0))
    run = call(httpserver.url_for("/gate/check"), type="confirm-rollout", wait=True, gate_timeout=30, gate_poll=0.05,
               rollback_url=httpserver.url_for("/rollback/check"))
    assert run.result["outcome"] == "passed"
    assert run.result["rollback_requested"] is False
