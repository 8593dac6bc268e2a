"""The form font: real glyphs for rare name characters, one parse per process."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import pytest
from fontTools.pens.recordingPen import RecordingPen  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from documents.forms import fonts
from documents.forms.fonts import FontUnavailable, FormFont, locate_font

#: Beyond GB2312: CJK Extension A (䶮 U+4DAE, 㛃 U+36C3) and Extension E (𬌗 U+2C317).
RARE = "䶮㛃𬌗"


@pytest.fixture(scope="module")
def font() -> FormFont:
    location = locate_font()  # a dependency: there on every machine that ran `make install`
    return FormFont(location.path, location.face, seed="王李", sha256=location.sha256)


def _outline_ops(data: bytes, char: str) -> int:
    """How many drawing operators the glyph of `char` has (0 for an empty or missing one)."""
    tt = TTFont(BytesIO(data))
    name = tt.getBestCmap().get(ord(char))
    if name is None or name == ".notdef":
        return 0
    pen = RecordingPen()
    tt.getGlyphSet()[name].draw(pen)
    return sum(1 for operator, _ in pen.value if operator in ("lineTo", "curveTo", "qCurveTo"))


def test_rare_name_characters_have_real_glyphs(font: FormFont) -> None:
    document = font.document_font("姓名 陈" + RARE)
    for char in RARE:
        assert font.covers(char)
        assert _outline_ops(document.data, char) > 0, f"{char} U+{ord(char):04X} has no outline"
    assert font.missing(RARE) == []


def test_characters_the_face_lacks_are_named(font: FormFont) -> None:
    assert font.missing("王𠀀") == ["𠀀"]  # U+20000: Extension B, not in Noto Sans CJK


def test_the_working_font_grows_only_for_new_characters(font: FormFont) -> None:
    font.document_font("献血登记表")
    rebuilds = font.rebuilds
    font.document_font("登记表 献血")
    assert font.rebuilds == rebuilds
    font.document_font("热合核对")
    assert font.rebuilds == rebuilds + 1


def test_a_document_font_holds_only_its_characters(font: FormFont) -> None:
    data = font.document_font("血液中心").data
    cmap = TTFont(BytesIO(data)).getBestCmap()
    assert set(map(chr, cmap)) == set("血液中心 ")


def test_a_missing_font_file_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(FontUnavailable, match="fonts-noto-cjk") as caught:
        FormFont(tmp_path / "none.otf")
    assert "pip install noto-cjk-sans-otc==0.0.1" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_pinned_pypi_font_comes_first_and_is_the_debian_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    location = locate_font()
    assert location.source == f"PyPI {fonts.FONT_DISTRIBUTION}"
    assert location.face == fonts.DEFAULT_FACE
    assert hashlib.sha256(location.path.read_bytes()).hexdigest() == fonts.PACKAGED_FONT_SHA256
    if fonts.DEFAULT_FONT.is_file():  # Debian bookworm ships the very same bytes
        assert fonts.DEFAULT_FONT.read_bytes() == location.path.read_bytes()


def test_without_the_pypi_package_debian_s_font_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    system = tmp_path / "NotoSansCJK-Regular.ttc"
    system.write_bytes(b"stand-in")
    monkeypatch.setattr(fonts, "FONT_PACKAGE", "no_such_font_package")
    monkeypatch.setattr(fonts, "DEFAULT_FONT", system)
    assert fonts.packaged_font() is None
    location = locate_font()
    assert (location.path, location.face, location.source) == (system, 2, "Debian fonts-noto-cjk")
    assert location.sha256 is None


def test_no_font_anywhere_is_one_line_naming_the_install_commands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fonts, "FONT_PACKAGE", "no_such_font_package")
    monkeypatch.setattr(fonts, "DEFAULT_FONT", tmp_path / "absent.ttc")
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    with pytest.raises(FontUnavailable) as caught:
        locate_font()
    message = str(caught.value)
    assert "\n" not in message
    assert "pip install noto-cjk-sans-otc==0.0.1" in message
    assert "apt-get install fonts-noto-cjk" in message


def test_a_configured_font_is_used_as_given_or_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    own = tmp_path / "own.otf"
    own.write_bytes(b"stand-in")
    monkeypatch.setenv(fonts.FONT_ENV, f"{own}#1")
    assert locate_font() == fonts.FontLocation(own, 1, fonts.FONT_ENV)
    monkeypatch.setenv(fonts.FONT_ENV, str(tmp_path / "gone.otf"))
    with pytest.raises(FontUnavailable, match=r"LEDGER_FORM_FONT names .*gone\.otf"):
        locate_font()
    monkeypatch.setenv(fonts.FONT_ENV, f"{own}#SC")
    with pytest.raises(FontUnavailable, match="must be a number"):
        locate_font()


def test_a_font_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    location = locate_font()
    tampered = tmp_path / "NotoSansCJK-Regular.ttc"
    data = bytearray(location.path.read_bytes())
    data[-1] ^= 1
    tampered.write_bytes(bytes(data))
    with pytest.raises(FontUnavailable, match=r"not the pinned file.*--force-reinstall"):
        FormFont(tampered, location.face, sha256=fonts.PACKAGED_FONT_SHA256)
