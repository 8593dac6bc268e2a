"""The station's own RFC 3161 time-stamping authority, and an HTTP server for it.

`TimestampAuthority` answers TimeStampReq DER with TimeStampResp DER: it is the embedded default
TSA of the demo and the tests (production points the client at third-party TSAs). Its tokens are
SignedData (version 3) of id-ct-TSTInfo with signed attributes content-type, message-digest and
ESS signing-certificate-v2 (RFC 5816), signed by the TSA credential's EC or RSA key; `openssl ts
-verify` accepts them.

What is written by hand, and why: asn1crypto builds every structure, but only once, in the
constructor. Dumping a SignedData built from asn1crypto objects re-serialises every nested object
(certificates included) on every call, so `stamp` joins pre-encoded DER parts (certificates,
signer identifier, ESS attribute, algorithm identifiers, policy, accuracy, TSA name) with the few
values that change per token (imprint, serial number, genTime, nonce, signature), writing the
element headers with `signing._der.tlv`, as `signing.cms` does; the unit tests check the result
against asn1crypto's own encoding of the same structure. No dependency of ours ships an RFC 3161
responder (pyHanko, not a dependency, has `DummyTimeStamper`, a test double that builds every
token with asn1crypto's typed classes), hence this module. `TsaServer` is
`http.server.ThreadingHTTPServer` with a small handler.

The checking half is `signing.tsp_validation`; it imports nothing from here.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization

from signing import _cms_build as _build
from signing._der import (
    OCTET_STRING_BYTE,
    SEQUENCE_BYTE,
    SET_BYTE,
    tlv,
)
from signing.errors import SigningError
from signing.pki import Credential

__all__ = ["DEFAULT_POLICY", "TimestampAuthority", "TsaServer"]

DEFAULT_POLICY = "1.3.6.1.4.1.99999.3161.1"
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REQUEST_BYTES = 16 * 1024  # a TimeStampReq is about 60 bytes; extensions rarely add much

_LOG = logging.getLogger(__name__)
_OCTET_STRING_32 = b"\x04\x20"  # the header of a SHA-256 value as an OCTET STRING
_GRANTED = tsp.PKIStatusInfo({"status": "granted"}).dump()
_EXPLICIT_0_BYTE = 0xA0  # [0] EXPLICIT, constructed: eContent, the TSTInfo tsa field


class _Rejection(Exception):
    """A request the TSA refuses: an RFC 3161 2.4.2 failure code and a text for the client."""

    def __init__(self, failure: str, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


class TimestampAuthority:
    """Issues RFC 3161 timestamp tokens with one credential, loaded once.

    Serial numbers are the genTime in microseconds since 1970 times 4096, bumped to stay strictly
    increasing: unique within a process, and across restarts as long as the clock does not go
    back. genTime keeps microseconds; the accuracy claimed is 1 second.
    """

    def __init__(
        self,
        credential: Credential,
        *,
        policy: str = DEFAULT_POLICY,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        key = credential.private_key
        if key.public_key() != credential.certificate.public_key():
            raise SigningError("the TSA credential's private key does not match its certificate")
        self._signature_algorithm = _build.signature_algorithm_der(key)
        self._key = key
        self._policy = policy
        self._clock = clock or _utc_now
        self._lock = threading.Lock()
        self._last_serial = 0
        self.certificate = credential.certificate

        tsa_cert = asn1_x509.Certificate.load(
            credential.certificate.public_bytes(serialization.Encoding.DER)
        )
        # Certificates sent when certReq is set: the TSA's and the CAs below the root.
        shipped = [tsa_cert] + [
            asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
            for cert in credential.chain
            if cert.subject != cert.issuer
        ]

        # TSTInfo: version | policy | messageImprint, serialNumber, genTime | accuracy |
        # nonce | tsa. RFC 5754: SHA-2 identifiers SHOULD be sent without parameters.
        self._sha256_absent = _build.sha256_algorithm().dump()
        self._tst_head = core.Integer(1).dump() + core.ObjectIdentifier(policy).dump()
        self._tst_tail = tsp.Accuracy({"seconds": 1}).dump()
        self._tsa_name = tlv(
            _EXPLICIT_0_BYTE,
            asn1_x509.GeneralName({"directory_name": tsa_cert.subject}).dump(),
        )

        # Signed attributes: content-type and ESS signing-certificate-v2 never change.
        ess = _build.signing_certificate_v2(tsa_cert)
        self._constant_attributes = (
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump(),
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}).dump(),
        )
        self._message_digest_type = cms.CMSAttributeType("message_digest").dump()
        self._signer_info_head = _build.signer_info_head(tsa_cert)
        # SignedData: version 3 (eContentType is not id-data), digestAlgorithms | encap... |
        # [0] certificates | signerInfos.
        self._signed_data_head = (
            cms.CMSVersion("v3").dump() + cms.DigestAlgorithms([_build.sha256_algorithm()]).dump()
        )
        self._tst_info_type = cms.ContentType("tst_info").dump()
        self._certificates = cms.CertificateSet(
            [cms.CertificateChoices({"certificate": cert}) for cert in shipped], implicit=0
        ).dump()

    @property
    def policy(self) -> str:
        return self._policy

    # -- tokens -----------------------------------------------------------------------------

    def stamp(self, digest: bytes, nonce: int | None = None, cert_req: bool = True) -> bytes:
        """The DER TimeStampToken (ContentInfo of SignedData) over a SHA-256 `digest`."""
        if len(digest) != 32:
            raise SigningError(f"a SHA-256 digest has 32 bytes, not {len(digest)}")
        return self._token(self._sha256_absent, digest, nonce, cert_req)

    def _token(
        self, algorithm_der: bytes, digest: bytes, nonce: int | None, cert_req: bool
    ) -> bytes:
        gen_time = self._clock().astimezone(UTC)
        tst_info = tlv(
            SEQUENCE_BYTE,
            self._tst_head
            + tlv(SEQUENCE_BYTE, algorithm_der + _OCTET_STRING_32 + digest)
            + core.Integer(self._next_serial(gen_time)).dump()
            + core.GeneralizedTime(gen_time).dump()
            + self._tst_tail
            + (b"" if nonce is None else core.Integer(nonce).dump())
            + self._tsa_name,
        )
        signed_attributes = b"".join(
            sorted(
                (
                    *self._constant_attributes,
                    tlv(
                        SEQUENCE_BYTE,
                        self._message_digest_type
                        + tlv(SET_BYTE, tlv(OCTET_STRING_BYTE, hashlib.sha256(tst_info).digest())),
                    ),
                )
            )
        )
        # RFC 5652 5.4: the signature covers the attributes encoded as an explicit SET OF.
        signature = _build.sign_sha256(self._key, tlv(SET_BYTE, signed_attributes))
        signer_info = _build.signer_info(
            self._signer_info_head, signed_attributes, self._signature_algorithm, signature
        )
        encapsulated = tlv(
            SEQUENCE_BYTE,
            self._tst_info_type + tlv(_EXPLICIT_0_BYTE, tlv(OCTET_STRING_BYTE, tst_info)),
        )
        return _build.content_info(
            self._signed_data_head
            + encapsulated
            + (self._certificates if cert_req else b"")
            + tlv(SET_BYTE, signer_info)
        )

    def _next_serial(self, gen_time: datetime) -> int:
        micros = int(gen_time.timestamp()) * 1_000_000 + gen_time.microsecond
        with self._lock:
            serial = max(micros << 12, self._last_serial + 1)
            self._last_serial = serial
        return serial

    # -- the protocol -----------------------------------------------------------------------

    def respond(self, request_der: bytes) -> bytes:
        """Answer a DER TimeStampReq with a DER TimeStampResp (RFC 3161 2.4.1, 2.4.2).

        A request the TSA cannot serve gets a response with status rejection and the failure
        code (badDataFormat, badAlg, unacceptedPolicy, unacceptedExtension, systemFailure),
        never an exception.
        """
        try:
            algorithm_der, digest, nonce, cert_req = self._read_request(request_der)
            try:
                token = self._token(algorithm_der, digest, nonce, cert_req)
            except Exception as exc:
                _LOG.exception("the TSA failed to make a token")
                raise _Rejection("system_failure", "the TSA failed to make a token") from exc
        except _Rejection as rejection:
            status = tsp.PKIStatusInfo(
                {
                    "status": "rejection",
                    "status_string": [rejection.text],
                    "fail_info": {rejection.failure},
                }
            )
            return tlv(SEQUENCE_BYTE, status.dump())
        return tlv(SEQUENCE_BYTE, _GRANTED + token)

    def _read_request(self, request_der: bytes) -> tuple[bytes, bytes, int | None, bool]:
        """The imprint's AlgorithmIdentifier (copied as sent), the digest, nonce and certReq."""
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            version = request["version"].native
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]
            algorithm_name = algorithm["algorithm"].native
            parameters = algorithm["parameters"]
            digest = imprint["hashed_message"].native
            policy = request["req_policy"]
            nonce = request["nonce"].native
            cert_req = bool(request["cert_req"].native)
            extensions = request["extensions"]
        except Exception as exc:  # asn1crypto: ValueError, TypeError, ... on malformed input
            raise _Rejection("bad_data_format", f"not a DER TimeStampReq: {exc}") from exc
        if version != "v1":
            raise _Rejection("bad_data_format", f"unsupported TimeStampReq version {version}")
        if algorithm_name != "sha256" or not isinstance(parameters, core.Void | core.Null):
            raise _Rejection("bad_alg", f"unsupported imprint algorithm {algorithm_name}")
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise _Rejection("bad_data_format", "the imprint is not a SHA-256 value")
        if not isinstance(policy, core.Void) and policy.dotted != self._policy:
            raise _Rejection("unaccepted_policy", f"policy {policy.dotted} is not served here")
        if not isinstance(extensions, core.Void) and len(extensions) > 0:
            raise _Rejection("unaccepted_extensions", "no request extension is supported")
        return algorithm.dump(), digest, nonce, cert_req


def _utc_now() -> datetime:
    return datetime.now(UTC)


# -- HTTP -----------------------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], authority: TimestampAuthority) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.authority = authority
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-request is routine; socketserver would print a traceback.
        _LOG.debug("connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """POST /tsa (or /) with application/timestamp-query; everything else is a 4xx."""

    server: _HttpServer
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    timeout = 30  # seconds a client may take to send its request
    # Headers and body leave in two writes: without TCP_NODELAY, Nagle's algorithm holds the
    # body back until the client's delayed ACK (40 ms): 23 tokens/s on a keep-alive connection.
    disable_nagle_algorithm = True
    _PATHS = frozenset({"/", "/tsa"})

    def do_POST(self) -> None:
        if urlsplit(self.path).path not in self._PATHS:
            self.send_error(404, "no TSA here: POST to /tsa")
            return
        if self.headers.get_content_type() != QUERY_TYPE:
            self.send_error(415, f"the request must be {QUERY_TYPE}")
            return
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            self.send_error(411, "Content-Length is required")
            return
        try:
            length = int(length_header)
        except ValueError:
            self.send_error(400, "bad Content-Length")
            return
        if not 0 <= length <= MAX_REQUEST_BYTES:
            self.send_error(413, f"a TimeStampReq is at most {MAX_REQUEST_BYTES} bytes")
            return
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return
        reply = self.server.authority.respond(body)
        self.send_response(200)
        self.send_header("Content-Type", REPLY_TYPE)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def _method_not_allowed(self) -> None:
        self.send_response(405, "only POST is served")
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def log_message(self, format: str, *args: object) -> None:
        _LOG.debug("%s %s", self.address_string(), format % args)


class TsaServer:
    """Serves a `TimestampAuthority` over HTTP (RFC 3161 3.4) on a ThreadingHTTPServer.

    The socket is bound in the constructor (port 0 picks a free port; `url` tells which).
    `start` serves from a background thread, `serve_forever` in the foreground (the CLI).
    """

    def __init__(
        self, authority: TimestampAuthority, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._httpd = _HttpServer((host, port), authority)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        if ":" in name:
            name = f"[{name}]"
        return f"http://{name}:{port}/tsa"

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the TSA server is already running")
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="tsa-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def serve_forever(self) -> None:
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def __enter__(self) -> TsaServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
