"""Adapters (the `ledger` command line). Importing this package is the process's entry point."""

import warnings

from cryptography.utils import CryptographyDeprecationWarning

# pyHanko 0.38 imports cryptography's DSA key classes, and cryptography 51 warns about DSA at that
# import (two lines on stderr before every command). We never use DSA. Ignore exactly that warning
# (category and message) before anything imports pyHanko; pyproject.toml pins cryptography <52.
warnings.filterwarnings(
    "ignore", message="DSA is deprecated", category=CryptographyDeprecationWarning
)
