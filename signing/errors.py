"""Errors: the project's one base for expected failures, and the signing package's own.

Every floor raises subclasses of :class:`LedgerError` for failures a user can act on (bad input,
a refused command, an unusable file, a missing prerequisite); the entry points (CLI, HTTP) catch
that base and render its one-line message. Any other exception escaping to an entry point is a
bug and is reported as one. It lives on the ground floor so that every floor can use it.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every expected failure of the project; ``str(error)`` is one line a user
    can act on."""


class InputError(LedgerError):
    """Input that cannot be used as given: a malformed value, a missing or unreadable file, an
    unknown name. Nothing was written."""


class SigningError(LedgerError):
    """Base class of every error raised by the signing package."""


class SignatureInvalid(SigningError):
    """A CMS signature does not verify; ``reason`` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CertificateInvalid(SigningError):
    """A certificate path does not validate; ``reason`` names the certificate and the check."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyStoreError(SigningError):
    """Keys or certificates cannot be created, read, decrypted or written."""


class PdfUnreadable(SigningError):
    """A file cannot be checked as a signed PDF: not a PDF, unreadable, or no signature at all."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
