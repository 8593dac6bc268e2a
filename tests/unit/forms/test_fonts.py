"""The form font: real glyphs for rare name characters, one parse per process."""

from __future__ import annotations

from io import BytesIO

import pytest
from fontTools.pens.recordingPen import RecordingPen  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from documents.forms.fonts import DEFAULT_FACE, DEFAULT_FONT, FontUnavailable, FormFont

pytestmark = pytest.mark.skipif(
    not DEFAULT_FONT.is_file(), reason="Debian's fonts-noto-cjk is not installed"
)
#: Beyond GB2312: CJK Extension A (䶮 U+4DAE, 㛃 U+36C3) and Extension E (𬌗 U+2C317).
RARE = "䶮㛃𬌗"


@pytest.fixture(scope="module")
def font() -> FormFont:
    return FormFont(DEFAULT_FONT, DEFAULT_FACE, seed="王李")


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


def test_a_missing_font_file_says_what_to_install(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(FontUnavailable, match="fonts-noto-cjk"):
        FormFont(Path(str(tmp_path)) / "none.otf")
