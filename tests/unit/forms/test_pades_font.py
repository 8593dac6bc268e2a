"""Reading a page font's ToUnicode and encoding CMaps and widths (signature appearances)."""

from __future__ import annotations

from pyhanko.pdf_utils import generic

from signing.pades import _code_to_cid, _to_unicode, _widths

TO_UNICODE = b"""/CIDInit /ProcSet findresource begin
begincmap
1 begincodespacerange <0000> <FFFF> endcodespacerange
3 beginbfchar
<0000> <0020>
<0001> <9648>
<0002> <D870DF17>
endbfchar
1 beginbfrange
<0010> <0012> <0041>
endbfrange
endcmap"""

ENCODING = b"""begincmap
2 begincidchar
<0000> 1
<0001> 3203
endcidchar
1 begincidrange
<0010> <0012> 34
endcidrange
endcmap"""


def test_to_unicode_reads_bfchar_surrogate_pairs_and_bfrange() -> None:
    codes = _to_unicode(TO_UNICODE)
    assert codes[" "] == 0 and codes["陈"] == 1
    assert codes["\U0002c317"] == 2  # 𬌗, outside the BMP: a UTF-16 surrogate pair
    assert [codes[c] for c in "ABC"] == [0x10, 0x11, 0x12]


def test_encoding_maps_codes_to_cids() -> None:
    assert _code_to_cid(ENCODING) == {0: 1, 1: 3203, 0x10: 34, 0x11: 35, 0x12: 36}


def test_widths_read_both_forms_of_the_w_array() -> None:
    def n(value: int) -> generic.NumberObject:
        return generic.NumberObject(value)  # type: ignore[no-untyped-call]

    cid_font = generic.DictionaryObject(  # type: ignore[no-untyped-call]
        {
            generic.NameObject("/DW"): n(1000),
            generic.NameObject("/W"): generic.ArrayObject(
                [n(1), generic.ArrayObject([n(224), n(300)]), n(34), n(36), n(555)]
            ),
        }
    )
    widths, default = _widths(cid_font)
    assert default == 1000
    assert widths == {1: 224, 2: 300, 34: 555, 35: 555, 36: 555}
