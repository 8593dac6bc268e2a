"""Errors of the signing package: one base class, one class per kind of failure."""

from __future__ import annotations


class SigningError(Exception):
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
