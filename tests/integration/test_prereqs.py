"""scripts/prereqs: what pip cannot bring is named in one line with the command that installs
it, before `make demo` or `make test` does any work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "prereqs"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not installed")


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The script with a PATH holding only python3 (no openssl, pdfsig, qpdf, java, apt-get)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "python3").exists():
        (bin_dir / "python3").symlink_to(sys.executable)
    assert BASH is not None
    return subprocess.run(
        [BASH, str(SCRIPT), *args],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_test_tools_are_named_in_one_line_with_the_install_command(
    tmp_path: Path,
) -> None:
    result = _run(tmp_path, "test", LEDGER_NO_SYSTEM_INSTALL="1")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    line = result.stderr.strip()
    for package in ("openssl", "poppler-utils", "qpdf", "libnss3-tools", "default-jre-headless"):
        assert package in line
    assert "apt-get install -y --no-install-recommends openssl poppler-utils" in line


def test_without_apt_get_the_line_names_the_debian_packages(tmp_path: Path) -> None:
    result = _run(tmp_path, "test")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "missing openssl poppler-utils qpdf" in result.stderr
    assert "package manager" in result.stderr


def test_a_python_that_is_missing_or_too_old_stops_in_one_line(tmp_path: Path) -> None:
    result = _run(tmp_path, "venv", PYTHON="python9")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "python9 not found" in result.stderr and "python3-venv" in result.stderr
    old = tmp_path / "bin" / "python-old"
    old.write_text("#!/bin/sh\n[ \"$1\" = -V ] && echo 'Python 3.9.2' && exit 0\nexit 1\n")
    old.chmod(0o755)
    result = _run(tmp_path, "venv", PYTHON="python-old")
    assert result.returncode == 1 and "needs Python >= 3.11" in result.stderr


def test_a_python_without_venv_names_the_debian_venv_package(tmp_path: Path) -> None:
    _run(tmp_path, "venv")  # creates bin/
    bare = tmp_path / "bin" / "python-bare"  # Debian's python3 before python3-venv is installed
    bare.write_text(
        '#!/bin/sh\ncase "$2" in *ensurepip*) exit 1;; *print*) echo 3.11;; esac\nexit 0\n'
    )
    bare.chmod(0o755)
    result = _run(tmp_path, "venv", PYTHON="python-bare", LEDGER_NO_SYSTEM_INSTALL="1")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "missing python3.11-venv" in result.stderr
    assert "apt-get install -y --no-install-recommends python3.11-venv" in result.stderr


def test_an_unknown_target_is_a_usage_line(tmp_path: Path) -> None:
    result = _run(tmp_path, "everything")
    assert result.returncode == 1 and "usage: scripts/prereqs venv|test" in result.stderr
    assert os.access(SCRIPT, os.X_OK)
