"""The CJK font of the forms: found once, parsed once per process, subset per document.

fpdf2 parses a font on every ``add_font`` (Noto Sans CJK: about 0.15 s) and subsets it again on
every ``output`` (another 0.18 s), and fontTools' subsetter destroys the font it works on. So a
process keeps one `FormFont`: the full face is read once; a *working font* (a desubroutinised
subset holding every character seen so far in this process) grows when a document brings new
characters (one full-font subsetting, about 0.2 to 0.5 s, rare once the common name characters
are in); each document gets a small subset of the working font with exactly its characters
(about 15 to 20 ms), which fpdf2 then embeds.

The font is Noto Sans CJK SC (SIL Open Font License 1.1), from Debian's ``fonts-noto-cjk``
(face 2 of ``NotoSansCJK-Regular.ttc``). It covers GB 18030's BMP hanzi, CJK Extension A and the
Extension B-F characters of the 通用规范汉字表 (e.g. 𬌗 U+2C317); `FormFont.missing` names the
characters of a text it lacks (a few rare Extension B names), which the renderer reports.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from fontTools import subset  # type: ignore[import-untyped]
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]

from signing.errors import LedgerError

#: Where Debian's fonts-noto-cjk puts the font, and which face of the collection is SC.
DEFAULT_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEFAULT_FACE = 2
FONT_ENV = "LEDGER_FORM_FONT"  # PATH or PATH#FACE
FACE_NAME = "Noto Sans CJK SC"

#: Always in the working font: ASCII, general and CJK punctuation, full-width forms.
_BASE_CHARS = frozenset(
    (
        *range(0x20, 0x7F),
        *(0xA0, 0xB0, 0xB1, 0xB7, 0xD7, 0x2103, 0x2116, 0x2160, 0x2161, 0x2162, 0x2460),
        *(0x25A0, 0x25A1, 0x25CB, 0x25CF, 0x2610, 0x2611, 0x2612, 0x2713, 0x2714, 0x2717),
        *range(0x2010, 0x2040),
        *range(0x2190, 0x2194),
        *range(0x3000, 0x3020),
        *range(0xFF01, 0xFF5F),
    )
)
#: Common surname and given-name characters, put in the working font when it is first built so
#: that most names cost no rebuild (the list is a head start, not a limit: others are added).
COMMON_NAME_CHARS = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝诸葛欧阳司马上官东方"
    "伟芳娜敏静秀英丽强磊军洋勇艳杰娟涛超霞平刚玉萍红建国辉鹏飞亮宇浩然志鑫波斌欣婷雪琳颖慧佳"
    "丹晶晨光海峰燕凤春云莉玲琴新利民永生德俊凯帅健东升立清正长松子梓涵轩博睿泽宏毅诚瑞祥福贵"
    "喜康乐晓露思雨梦怡嘉悦瑶琪璐昊天辰奕铭哲皓晖炜琦璇婉淑贤惠珍珠翠娥妹兴旺财宝发家庆荣耀祖"
    "武斌斐彬彦岩峻崇嵩山川河湖江洪涌浪涵润泉源淼森桦楠槐柳桃杏菊莲荷芬芸蕾蓉薇萱茹莹蒂少小大"
    "一二三四五六七八九十百千万元中华美秀丰富强盛宏伟振兴家国良善仁义礼智信忠孝廉耻和顺达通"
)

#: Tables no form needs (layout is not shaped; text is horizontal).
_DROP = ["GPOS", "GDEF", "GSUB", "vmtx", "vhea", "VORG", "BASE", "DSIG", "JSTF", "MATH"]


class FontUnavailable(LedgerError, RuntimeError):
    """The form font is not installed where expected."""


def _options(*, working: bool) -> subset.Options:
    options = subset.Options(
        layout_closure=False,
        notdef_outline=True,
        name_IDs=["*"],
        name_languages=["*"],
        desubroutinize=working,
    )
    options.drop_tables += _DROP
    # Bounds and averages are recomputed by charstring execution, the costly part; the
    # working font keeps the full face's values (FontBBox, xAvgCharWidth), which stay valid
    # for a subset (a bounding box of all glyphs still bounds any subset of them).
    options.recalc_bounds = False
    options.recalc_average_width = False
    options.recalc_max_context = False
    options.prune_unicode_ranges = False
    return options


def _subset(source: bytes, codepoints: Iterable[int], *, working: bool, face: int = -1) -> bytes:
    font = TTFont(BytesIO(source), lazy=True, recalcBBoxes=False, fontNumber=face)
    subsetter = subset.Subsetter(_options(working=working))
    subsetter.populate(unicodes=sorted(codepoints))
    subsetter.subset(font)
    out = BytesIO()
    font.save(out)
    font.close()
    return out.getvalue()


@dataclass(frozen=True)
class DocumentFont:
    """A font program holding exactly the characters of one document (plus ASCII)."""

    data: bytes
    family: str = "NotoSansCJKSC"


class FormFont:
    """One CJK face for a process; thread-safe."""

    def __init__(self, path: Path, face: int = 0, seed: str = COMMON_NAME_CHARS) -> None:
        if not path.is_file():
            raise FontUnavailable(
                f"form font {path} is missing: install Debian's fonts-noto-cjk "
                f"(or set {FONT_ENV}=PATH[#FACE] to another openly licensed CJK font)"
            )
        self.path = path
        self.face = face
        self.seed = seed
        self._lock = threading.Lock()
        self._source = path.read_bytes()
        full = TTFont(BytesIO(self._source), lazy=True, fontNumber=face if _is_ttc(path) else -1)
        self._cmap = frozenset(full.getBestCmap())
        full.close()
        self._working_chars: frozenset[int] = frozenset()
        self._working: bytes = b""
        self.rebuilds = 0

    def covers(self, char: str) -> bool:
        return ord(char) in self._cmap

    def missing(self, text: str) -> list[str]:
        """Characters of `text` the face has no glyph for (sorted, distinct)."""
        return sorted({c for c in text if ord(c) not in self._cmap and not c.isspace()})

    def document_font(self, text: str) -> DocumentFont:
        """A font program with the glyphs of `text` (and the space), for one document."""
        wanted = (frozenset(map(ord, text)) | {0x20}) & self._cmap
        with self._lock:
            if not wanted <= self._working_chars:
                seed = frozenset(map(ord, self.seed)) if not self._working_chars else frozenset()
                grown = (self._working_chars | wanted | seed | _BASE_CHARS) & self._cmap
                self._working = _subset(
                    self._source,
                    grown,
                    working=True,
                    face=self.face if _is_ttc(self.path) else -1,
                )
                self._working_chars = grown
                self.rebuilds += 1
            working = self._working
        return DocumentFont(_subset(working, wanted, working=False))

    def warm(self, text: str) -> None:
        """Grow the working font ahead of time (e.g. with the forms' fixed labels)."""
        self.document_font(text)


def _is_ttc(path: Path) -> bool:
    return path.suffix.lower() in (".ttc", ".otc")


def font_location() -> tuple[Path, int]:
    """The form font: ``LEDGER_FORM_FONT`` (PATH or PATH#FACE) or Debian's Noto Sans CJK SC."""
    configured = os.environ.get(FONT_ENV, "").strip()
    if not configured:
        return DEFAULT_FONT, DEFAULT_FACE
    path, _, face = configured.partition("#")
    return Path(path), int(face or 0)


@lru_cache(maxsize=4)
def form_font(path: Path | None = None, face: int | None = None) -> FormFont:
    """The process-wide `FormFont` (read and parsed once per path and face)."""
    if path is None:
        path, default_face = font_location()
        face = default_face if face is None else face
    return FormFont(path, face or 0)
