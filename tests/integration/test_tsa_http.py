"""The RFC 3161 client and the local TSA over real HTTP: transport, failover, throughput.

Every server here listens on 127.0.0.1 with a port picked by the kernel. A "black hole" is a
listening socket that never accepts: the connection is made, the request is sent, no answer
comes (the timeout path); a "closed port" refuses the connection.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from asn1crypto import tsp

from signing.pki import Credential, Rsa, StationPKI
from signing.timestamps import (
    HttpTimeStamper,
    InProcessTimeStamper,
    TimestampRejected,
    TsaUnavailable,
)
from signing.tsa import TimestampAuthority, TsaServer
from signing.tsp_validation import verify_timestamp_token

DIGEST = hashlib.sha256(b"merkle root of batch 17").digest()
OTHER_POLICY = "1.3.6.1.4.1.99999.3161.2"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StationPKI:
    return StationPKI.create(
        tmp_path_factory.mktemp("tsa-http") / "pki", "Station Nord", b"pw", datetime.now(UTC)
    )


@pytest.fixture(scope="module")
def tsa(pki: StationPKI) -> Credential:
    return pki.issue_tsa("Station Nord TSA", datetime.now(UTC))


@pytest.fixture
def server(tsa: Credential) -> Iterator[TsaServer]:
    with TsaServer(TimestampAuthority(tsa)) as running:
        yield running


@pytest.fixture
def black_hole() -> Iterator[str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/tsa"
    listener.close()


@pytest.fixture
def closed_port() -> str:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}/tsa"


def _stamper(
    pki: StationPKI, *urls: str, timeout: float = 5.0, policy: str | None = None
) -> HttpTimeStamper:
    return HttpTimeStamper(list(urls), [pki.root_certificate], timeout=timeout, policy=policy)


# -- the happy path -------------------------------------------------------------------------


def test_timestamp_over_http(pki: StationPKI, tsa: Credential, server: TsaServer) -> None:
    assert urlsplit(server.url).path == "/tsa"
    before = datetime.now(UTC)
    token = _stamper(pki, server.url).timestamp(DIGEST)
    assert token.tsa_url == server.url
    assert token.digest == DIGEST
    assert before.replace(microsecond=0) <= token.gen_time <= datetime.now(UTC)
    verified = verify_timestamp_token(token.der, DIGEST)
    assert verified.tsa_certificate == tsa.certificate
    assert verified.serial_number == token.serial_number


def test_concurrent_clients_get_distinct_serial_numbers(pki: StationPKI, server: TsaServer) -> None:
    stamper = _stamper(pki, server.url)
    serials: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(25):
            serial = stamper.timestamp(DIGEST).serial_number
            with lock:
                serials.append(serial)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(serials) == len(set(serials)) == 200


# -- the server's HTTP surface --------------------------------------------------------------


def _raw(
    url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("GET", "/tsa", None, {}, 405),
        ("PUT", "/tsa", b"x", {"Content-Type": "application/timestamp-query"}, 405),
        ("POST", "/tsa", b"x", {"Content-Type": "application/octet-stream"}, 415),
        ("POST", "/elsewhere", b"x", {"Content-Type": "application/timestamp-query"}, 404),
        ("POST", "/tsa", b"x" * 20_000, {"Content-Type": "application/timestamp-query"}, 413),
    ],
)
def test_server_serves_only_timestamp_queries(
    server: TsaServer,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
) -> None:
    got, response_headers, _ = _raw(server.url, method, path, body, headers)
    assert got == status
    if status == 405:
        assert response_headers["Allow"] == "POST"


def test_server_needs_a_content_length(server: TsaServer) -> None:
    parts = urlsplit(server.url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as raw:
        raw.sendall(
            b"POST /tsa HTTP/1.1\r\nHost: x\r\nContent-Type: application/timestamp-query\r\n\r\n"
        )
        status_line = raw.recv(200).split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"411"


def test_garbage_query_gets_a_rejection_not_an_http_error(server: TsaServer) -> None:
    status, headers, body = _raw(
        server.url, "POST", "/", b"garbage", {"Content-Type": "application/timestamp-query"}
    )
    assert status == 200
    assert headers["Content-Type"] == "application/timestamp-reply"
    assert body.startswith(b"\x30") and b"\x02\x01\x02" in body  # PKIStatus rejection (2)


# -- failover -------------------------------------------------------------------------------


def test_failover_after_a_timeout(pki: StationPKI, server: TsaServer, black_hole: str) -> None:
    started = time.monotonic()
    token = _stamper(pki, black_hole, server.url, timeout=0.5).timestamp(DIGEST)
    assert token.tsa_url == server.url
    assert time.monotonic() - started < 3


def test_failover_after_a_refused_connection(
    pki: StationPKI, server: TsaServer, closed_port: str
) -> None:
    assert _stamper(pki, closed_port, server.url).timestamp(DIGEST).tsa_url == server.url


def test_failover_after_an_http_error(pki: StationPKI, server: TsaServer) -> None:
    wrong_path = server.url.replace("/tsa", "/nothing-here")
    assert _stamper(pki, wrong_path, server.url).timestamp(DIGEST).tsa_url == server.url


def test_all_down_is_unavailable_naming_each(
    pki: StationPKI, black_hole: str, closed_port: str, server: TsaServer
) -> None:
    wrong_path = server.url.replace("/tsa", "/nothing-here")
    with pytest.raises(TsaUnavailable) as caught:
        _stamper(pki, black_hole, closed_port, wrong_path, timeout=0.5).timestamp(DIGEST)
    reasons = dict(caught.value.reasons)
    assert list(reasons) == [black_hole, closed_port, wrong_path]
    assert "timed out" in reasons[black_hole]
    assert "refused" in reasons[closed_port]
    assert "HTTP 404" in reasons[wrong_path]
    for url in (black_hole, closed_port, wrong_path):
        assert url in str(caught.value)


class _HtmlHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"<html>captive portal</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_web_page_instead_of_a_reply_is_unavailable(pki: StationPKI, server: TsaServer) -> None:
    html = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    thread = threading.Thread(target=html.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{html.server_address[1]}/tsa"
        with pytest.raises(TsaUnavailable, match="text/html"):
            _stamper(pki, url).timestamp(DIGEST)
        assert _stamper(pki, url, server.url).timestamp(DIGEST).tsa_url == server.url
    finally:
        html.shutdown()
        html.server_close()


def test_failover_after_a_rejection(pki: StationPKI, tsa: Credential, server: TsaServer) -> None:
    """The first TSA refuses the policy asked for; the second serves it."""
    with TsaServer(TimestampAuthority(tsa, policy=OTHER_POLICY)) as other:
        token = _stamper(pki, server.url, other.url, policy=OTHER_POLICY).timestamp(DIGEST)
    assert token.tsa_url == other.url
    assert verify_timestamp_token(token.der, DIGEST).policy == OTHER_POLICY


def test_rejection_wins_over_unavailability(
    pki: StationPKI, server: TsaServer, closed_port: str
) -> None:
    with pytest.raises(TimestampRejected) as caught:
        _stamper(pki, closed_port, server.url, policy=OTHER_POLICY).timestamp(DIGEST)
    reasons = dict(caught.value.reasons)
    assert "refused" in reasons[closed_port]
    assert "unaccepted_policy" in reasons[server.url]


def test_untrusted_tsa_over_http(pki: StationPKI, tmp_path: Path) -> None:
    other = StationPKI.create(tmp_path / "other", "Station Nord", b"x", datetime.now(UTC))
    foreign = TimestampAuthority(other.issue_tsa("Station Nord TSA", datetime.now(UTC)))
    with TsaServer(foreign) as running, pytest.raises(TimestampRejected, match="trust"):
        _stamper(pki, running.url).timestamp(DIGEST)


# -- throughput (printed, not asserted) -----------------------------------------------------


def _rate(action: Callable[[], object], seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        action()
        count += 1
    return count / elapsed


def _request_der(digest: bytes) -> bytes:
    request = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": digest},
        "nonce": 12345,
        "cert_req": True,
    }
    return bytes(tsp.TimeStampReq(request).dump())


def _post_keep_alive(connection: http.client.HTTPConnection, request: bytes) -> None:
    connection.request(
        "POST", "/tsa", body=request, headers={"Content-Type": "application/timestamp-query"}
    )
    response = connection.getresponse()
    assert response.status == 200 and response.read()


@pytest.mark.slow
def test_throughput(
    pki: StationPKI, tsa: Credential, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rsa_pki = StationPKI.create(
        tmp_path / "rsa", "Station Sud", b"pw", datetime.now(UTC), algorithm=Rsa()
    )
    rsa_tsa = rsa_pki.issue_tsa("Station Sud TSA", datetime.now(UTC))
    lines = []
    for label, credential, roots, http_seconds in (
        ("EC P-256", tsa, [pki.root_certificate], 2.0),
        ("RSA 3072", rsa_tsa, [rsa_pki.root_certificate], 1.0),
    ):
        authority = TimestampAuthority(credential)
        in_process = InProcessTimeStamper(authority, roots)
        request = _request_der(DIGEST)
        stamp = _rate(partial(authority.stamp, DIGEST), 0.5)
        respond = _rate(partial(authority.respond, request), 0.5)
        checked = _rate(partial(in_process.timestamp, DIGEST), 0.5)
        with TsaServer(authority) as running:
            client = HttpTimeStamper([running.url], roots)
            over_http = _rate(partial(client.timestamp, DIGEST), http_seconds)
            parts = urlsplit(running.url)
            assert parts.hostname is not None and parts.port is not None
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
            served = _rate(partial(_post_keep_alive, connection, request), 1.0)
            connection.close()
        lines.append(
            f"{label}: in process: stamp {stamp:,.0f}/s, respond (parse request, stamp) "
            f"{respond:,.0f}/s, InProcessTimeStamper (request, respond, every client check) "
            f"{checked:,.0f}/s; over HTTP: HttpTimeStamper (new connection per token, every "
            f"check) {over_http:,.0f}/s, server alone (one keep-alive client, no checks) "
            f"{served:,.0f}/s"
        )
    with capsys.disabled():
        print("\nTSA throughput:\n  " + "\n  ".join(lines))
