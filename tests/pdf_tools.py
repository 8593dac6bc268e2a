"""Independent tools on a signed PDF: poppler's pdfsig and pdffonts, qpdf, PDFBox Preflight.

pdfsig gets an NSS database made at test time that trusts only the given root
(``certutil -N -d sql:DIR --empty-password``; ``certutil -A -n root -t CT,C,C -a -i root.pem``).
Poppler 22 cannot validate document timestamps ("Unimplemented Feature"), so only the blocks
of ordinary signatures (SubFilter ETSI.CAdES.detached or adbe.pkcs7.detached) are judged.

PDFBox Preflight (Debian libpdfbox2-java) implements PDF/A-1b only: the errors whose rule a
PDF/A-3b file may break (PDF/A-2 and -3 allow it) are listed in `PREFLIGHT_A1_ONLY`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SIGNATURE_TYPES = ("ETSI.CAdES.detached", "adbe.pkcs7.detached")
PREFLIGHT_JARS = (
    "preflight",
    "pdfbox2",
    "xmpbox",
    "fontbox2",
    "commons-logging",
    "javax.activation",
    "jaxb-api",
)
#: Preflight (PDF/A-1b) errors that PDF/A-3b allows, by code and message fragment.
PREFLIGHT_A1_ONLY = (
    ("1.4.7", "EmbeddedFile entry is present in the Names dictionary"),  # A-3 6.8 allows them
    ("1.2.9", "EmbeddedFile entry is present in a FileSpecification"),  # idem
    ("2.2.1", "transparency"),  # 6.4 allow transparency
    ("3.1.11", "CIDSet entry is missing"),  # 6.2.11.4.2: CIDSet optional
    ("5.3.1", "widget annotation lacks an appearance dictionary"),  # 6.3.3: not for
    # annotations whose Rect has zero size (invisible signature fields); signing.pdfa checks
    # that every other annotation has one
    ("7.3", "Schema is not set"),  # PDFBox wants XMP namespaces declared on rdf:Description
)


def tool(name: str) -> str | None:
    return shutil.which(name)


def nss_database(directory: Path, root_pem: bytes) -> str:
    """An NSS database under `directory` trusting `root_pem` (CT,C,C); returns ``sql:DIR``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "root.pem").write_bytes(root_pem)
    database = f"sql:{directory}"
    for command in (
        ["certutil", "-N", "-d", database, "--empty-password"],
        [
            "certutil",
            "-A",
            "-n",
            "root",
            "-t",
            "CT,C,C",
            "-a",
            "-i",
            str(directory / "root.pem"),
            "-d",
            database,
        ],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    return database


@dataclass(frozen=True)
class PdfsigBlock:
    field: str
    signature_type: str
    validation: str
    certificate: str


def pdfsig(path: Path, database: str) -> list[PdfsigBlock]:
    result = subprocess.run(
        ["pdfsig", "-nssdir", database, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    blocks = []
    for chunk in result.stdout.split("Signature #")[1:]:
        facts = {}
        for line in chunk.splitlines():
            key, _, value = line.strip().lstrip("- ").partition(": ")
            facts[key] = value
        blocks.append(
            PdfsigBlock(
                facts.get("Signature Field Name", ""),
                facts.get("Signature Type", ""),
                facts.get("Signature Validation", ""),
                facts.get("Certificate Validation", ""),
            )
        )
    return blocks


def qpdf_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def pdffonts(path: Path) -> list[tuple[str, str]]:
    """(font name, its "emb" column) for every font pdffonts lists."""
    result = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    header, _rule, *rows = result.stdout.splitlines()
    column = header.index("emb")
    return [(row.split()[0], row[column : column + 3].strip()) for row in rows if row.strip()]


def preflight_classpath() -> str | None:
    jars = [Path(f"/usr/share/java/{name}.jar") for name in PREFLIGHT_JARS]
    if tool("java") is None or not all(jar.exists() for jar in jars):
        return None
    return ":".join(str(jar) for jar in jars)


def preflight_errors(path: Path, classpath: str) -> list[str]:
    """Preflight's PDF/A-1b errors ("code : message"), empty when it calls the file valid."""
    result = subprocess.run(
        ["java", "-cp", classpath, "org.apache.pdfbox.preflight.Validator_A1b", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return [line for line in result.stdout.splitlines() if " : " in line]


def unexpected_preflight_errors(errors: list[str]) -> list[str]:
    return [
        error
        for error in errors
        if not any(
            error.startswith(f"{code} ") and fragment in error
            for code, fragment in PREFLIGHT_A1_ONLY
        )
    ]
