"""Getting RFC 3161 timestamp tokens: the client, one interface and one class per transport.

`TimeStamper` is the capability (a SHA-256 digest in, a checked token out). `HttpTimeStamper`
asks TSAs over HTTP (RFC 3161 3.4, `application/timestamp-query`), trying several URLs in order;
`InProcessTimeStamper` asks a local `signing.tsa.TimestampAuthority` directly, for tests and
benchmarks. Both run the same checks on every answer before returning it: status granted, the
token verifies over the digest (`signing.tsp_validation`), the nonce is the one sent, the policy
is the one asked for (if any), and the TSA certificate has extendedKeyUsage timeStamping (critical)
and chains to one of the trust roots at genTime.

Failover: a URL that does not answer (connection refused, timeout, HTTP error status, a body that
is not `application/timestamp-reply`) and a URL whose answer fails a check are both skipped for the
next one. If no URL gives a good token, `TimestampRejected` is raised when at least one TSA
answered with a bad response (that is a security event, not an outage), else `TsaUnavailable`;
both carry every URL's reason.

Everything here is the standard library (`urllib.request`) and asn1crypto; only the response
checks that no library does are written out, in `signing.tsp_validation`.
"""

from __future__ import annotations

import http.client
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from asn1crypto import tsp
from cryptography import x509

from signing import _der
from signing.errors import CertificateInvalid, SignatureInvalid, SigningError
from signing.paths import CertificateValidator
from signing.tsp_validation import verify_timestamp_token

if TYPE_CHECKING:
    from signing.tsa import TimestampAuthority

__all__ = [
    "HttpTimeStamper",
    "InProcessTimeStamper",
    "TimeStamper",
    "TimestampRejected",
    "TimestampToken",
    "TsaUnavailable",
]

QUERY_TYPE = "application/timestamp-query"
# RFC 3161 3.4; "timestamp-response" is the name of an early draft that some TSAs still send.
REPLY_TYPES = frozenset({"application/timestamp-reply", "application/timestamp-response"})
MAX_REPLY_BYTES = 1024 * 1024
IN_PROCESS_URL = "in-process"


def _describe(reasons: Sequence[tuple[str, str]]) -> str:
    return "; ".join(f"{url}: {reason}" for url, reason in reasons)


class TsaUnavailable(SigningError):
    """No TSA answered; `reasons` holds (url, why) for each URL tried, in order."""

    def __init__(self, reasons: Sequence[tuple[str, str]]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(f"no TSA answered: {_describe(self.reasons)}")


class TimestampRejected(SigningError):
    """A TSA answered with a bad response (status not granted, nonce or imprint mismatch,
    signature or TSA certificate invalid) and no other URL gave a good one.

    `reasons` holds (url, why) for each URL tried, in order, unavailable ones included.
    """

    def __init__(self, reasons: Sequence[tuple[str, str]]) -> None:
        self.reasons = tuple(reasons)
        super().__init__(f"timestamp rejected: {_describe(self.reasons)}")


@dataclass(frozen=True)
class TimestampToken:
    """A checked timestamp token, and what it says."""

    der: bytes  # the TimeStampToken (ContentInfo of SignedData) DER: what is stored
    gen_time: datetime  # TSTInfo genTime, UTC
    serial_number: int  # TSTInfo serialNumber
    tsa_url: str  # where it came from ("in-process" for InProcessTimeStamper)
    digest: bytes  # the message imprint: SHA-256 of the timestamped data


class TimeStamper(Protocol):
    """Gets a checked RFC 3161 timestamp token over a SHA-256 digest."""

    def timestamp(self, digest: bytes) -> TimestampToken: ...


class _Rejected(Exception):
    """A response that is there but fails a check."""


class _Unavailable(Exception):
    """No usable response."""


class _ResponseChecker:
    """Builds requests and checks responses; shared by every transport."""

    def __init__(self, trust_roots: Sequence[x509.Certificate], policy: str | None) -> None:
        if not trust_roots:
            raise ValueError("a timestamp client needs at least one trust root for its TSAs")
        self._validator = CertificateValidator(trust_roots)  # caches each TSA's path
        self._policy = policy

    def request(self, digest: bytes) -> tuple[bytes, int]:
        """RFC 3161 2.4.1: TimeStampReq v1, SHA-256 imprint, random 64-bit nonce, certReq."""
        if not isinstance(digest, bytes) or len(digest) != 32:
            raise ValueError("the digest to timestamp must be 32 bytes of SHA-256")
        nonce = secrets.randbits(64)
        fields: dict[str, object] = {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256", "parameters": None},
                "hashed_message": digest,
            },
            "nonce": nonce,
            "cert_req": True,
        }
        if self._policy is not None:
            fields["req_policy"] = self._policy
        return bytes(tsp.TimeStampReq(fields).dump()), nonce

    def check(self, response_der: bytes, digest: bytes, nonce: int, source: str) -> TimestampToken:
        """RFC 3161 2.4.2: the response is granted and its token is the one we asked for."""
        try:
            parts = _der.elements(_der.single(response_der).contents)
            status_info = tsp.PKIStatusInfo.load(parts[0].encoded, strict=True)
            status = status_info["status"].native
            if status not in ("granted", "granted_with_mods"):
                failures = status_info["fail_info"].native or set()
                text = " ".join(status_info["status_string"].native or [])
                raise _Rejected(
                    f"status {status} ({', '.join(sorted(failures)) or 'no failure code'})"
                    + (f": {text}" if text else "")
                )
            if len(parts) != 2:
                raise _Rejected("a granted response without a timestamp token")
            token_der = parts[1].encoded
        except _Rejected:
            raise
        except Exception as exc:  # asn1crypto / _der on a malformed body
            raise _Rejected(f"not a DER TimeStampResp: {exc}") from exc
        try:
            verified = verify_timestamp_token(token_der, digest, self._validator)
        except (SignatureInvalid, CertificateInvalid) as exc:
            raise _Rejected(exc.reason) from exc
        if verified.nonce != nonce:
            raise _Rejected(f"nonce mismatch: sent {nonce}, the token has {verified.nonce}")
        if self._policy is not None and verified.policy != self._policy:
            raise _Rejected(f"policy mismatch: asked {self._policy}, got {verified.policy}")
        return TimestampToken(
            der=token_der,
            gen_time=verified.gen_time,
            serial_number=verified.serial_number,
            tsa_url=source,
            digest=digest,
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would turn the POST into a GET without its body."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class HttpTimeStamper:
    """Timestamps over HTTP(S) with TSAs tried in order (failover).

    `timeout` bounds each URL: it is the socket timeout of the connection and of every read,
    and the reply must be complete within it (checked between reads, so a TSA that trickles
    bytes is cut off after at most about twice `timeout`). Proxies come from the environment
    (`https_proxy`, `no_proxy`), as with any urllib client; redirects are refused.
    """

    def __init__(
        self,
        urls: Sequence[str],
        trust_roots: Sequence[x509.Certificate],
        *,
        timeout: float = 5.0,
        policy: str | None = None,
    ) -> None:
        if isinstance(urls, str):
            raise TypeError("urls is a sequence of URLs, not one string")
        if not urls:
            raise ValueError("at least one TSA URL is required")
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) TSA URL: {url!r}")
        if not timeout > 0:
            raise ValueError("the timeout must be positive")
        self._urls = tuple(urls)
        self._timeout = timeout
        self._checker = _ResponseChecker(trust_roots, policy)
        self._opener = urllib.request.build_opener(_NoRedirect)

    @property
    def urls(self) -> tuple[str, ...]:
        return self._urls

    def timestamp(self, digest: bytes) -> TimestampToken:
        request_der, nonce = self._checker.request(digest)
        reasons: list[tuple[str, str]] = []
        rejected = False
        for url in self._urls:
            try:
                response_der = self._post(url, request_der)
                return self._checker.check(response_der, digest, nonce, url)
            except _Unavailable as exc:
                reasons.append((url, str(exc)))
            except _Rejected as exc:
                reasons.append((url, f"rejected: {exc}"))
                rejected = True
        raise TimestampRejected(reasons) if rejected else TsaUnavailable(reasons)

    def _post(self, url: str, body: bytes) -> bytes:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": QUERY_TYPE, "Accept": ", ".join(sorted(REPLY_TYPES))},
        )
        deadline = time.monotonic() + self._timeout
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                content_type = response.headers.get_content_type()
                if content_type not in REPLY_TYPES:
                    raise _Unavailable(f"HTTP {response.status} with content type {content_type}")
                chunks: list[bytes] = []
                size = 0
                while chunk := response.read1(65536):
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        raise _Unavailable(f"reply larger than {MAX_REPLY_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise _Unavailable(f"reply not complete within {self._timeout} s")
                    chunks.append(chunk)
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise _Unavailable(f"HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise _Unavailable(f"timed out after {self._timeout} s") from exc
            raise _Unavailable(f"cannot connect: {reason}") from exc
        except TimeoutError as exc:
            raise _Unavailable(f"timed out after {self._timeout} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise _Unavailable(f"{exc.__class__.__name__}: {exc}") from exc


class InProcessTimeStamper:
    """Timestamps with a local `TimestampAuthority`, without HTTP, with the same checks.

    The request and response go through `TimestampAuthority.respond` as DER, so everything
    but the transport is exercised.
    """

    def __init__(
        self, authority: TimestampAuthority, trust_roots: Sequence[x509.Certificate]
    ) -> None:
        self._authority = authority
        self._checker = _ResponseChecker(trust_roots, None)

    def timestamp(self, digest: bytes) -> TimestampToken:
        request_der, nonce = self._checker.request(digest)
        response_der = self._authority.respond(request_der)
        try:
            return self._checker.check(response_der, digest, nonce, IN_PROCESS_URL)
        except _Rejected as exc:
            raise TimestampRejected([(IN_PROCESS_URL, str(exc))]) from exc
