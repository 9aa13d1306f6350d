"""Streaming, hardened parser for CommerceML 2.x/3.x files (the 1C "обмен с сайтом" exchange).

One pass of ``lxml.etree.iterparse`` over a file yields ``(entity, record)`` pairs, where a record is a
plain ``dict`` of stripped strings, booleans and small lists/dicts. Numbers (prices, quantities, sums)
stay strings exactly as written: typing and rule checks belong to the loader and staging, so a
malformed value never stops a load. Entities and their fields are listed in ``README.md``.

Memory stays flat whatever the file size: only the end events of record and section elements are
reported (a ``tag`` filter on local names in any namespace), each record is converted the moment
its end tag is read, then cleared and detached together with its already-processed siblings.

Hardening: a DOCTYPE (hence any entity declaration: billion laughs, external entities) is refused
with :class:`CommerceMLUnsafeXMLError` by inspecting the prolog before libxml2 sees it, and again on
the parsed document; libxml2 itself runs with ``resolve_entities=False``, ``no_network=True``,
``load_dtd=False`` and ``huge_tree=False``. Malformed XML raises :class:`CommerceMLSyntaxError`
naming the file, line and element.

The module has no Airflow, Iceberg or pyarrow imports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import IO, Any, NoReturn

from lxml import etree

from elt_platform.sources.commerceml.settings import ENTITIES

Record = dict[str, Any]
Source = str | os.PathLike[str] | IO[bytes]

# Sections that carry a package-level header (Ид, Наименование, СодержитТолькоИзменения).
SECTIONS = frozenset(
    {"Классификатор", "Каталог", "ПакетПредложений", "ИзмененияПакетаПредложений", "Контрагенты"}
)
ROOT = "КоммерческаяИнформация"
ACCEPTED_ROOTS = frozenset({ROOT, "Классификатор"})
"""Root elements of a CommerceML file; any other root is refused (:class:`CommerceMLContentError`)."""

# Brand is not a standard CommerceML field: 1C exports it as an ordinary property with one of these names.
BRAND_PROPERTY_NAMES = frozenset({"бренд", "brand", "торговая марка", "марка", "производитель"})

PROLOG_LIMIT = 64 * 1024
"""Bytes read ahead to find the root element; a longer prolog is refused rather than trusted."""

_TRUE = frozenset({"true", "да", "1"})
_FALSE = frozenset({"false", "нет", "0"})
_DELETED_STATUS = frozenset({"удален", "удалён"})
# Children of <Предложение> that only carry prices or rests; an offer made of these alone is a
# prices/rests fragment of a split export and does not describe the offer itself.
_NON_DESCRIPTIVE_OFFER_CHILDREN = frozenset(
    {"Ид", "ИдХарактеристики", "Цены", "Остатки", "Склад", "Количество"}
)
_CONTRAGENT_WRAPPERS = frozenset(
    {"ЮридическоеЛицо", "ФизическоеЛицо", "Реквизиты", "РеквизитыЮрЛица", "РеквизитыФизЛица"}
)
_ADDRESS_KINDS = frozenset(
    {"АдресРегистрации", "ЮридическийАдрес", "Адрес", "ФактическийАдрес", "ПочтовыйАдрес"}
)
# Containers a warehouse/property/group list may hang from; anything else (a document, a document
# line) is read by the handler of that enclosing record instead.
_REFERENCE_PARENTS = frozenset(
    {ROOT, "Классификатор", "ПакетПредложений", "ИзмененияПакетаПредложений", "Каталог"}
)

_RECORD_TAGS = (
    "Группа",
    "Свойство",
    "СвойствоНоменклатуры",
    "Справочник",
    "ТипЦены",
    "Склад",
    "ЕдиницаИзмерения",
    "Товар",
    "Предложение",
    "Контрагент",
    "Документ",
)
_SECTION_TAGS = (*sorted(SECTIONS), "Контейнер", "СодержитТолькоИзменения", ROOT)
_ITERPARSE_TAGS = [f"{{*}}{name}" for name in (*_RECORD_TAGS, *_SECTION_TAGS)]

_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}


class CommerceMLError(Exception):
    """Base class for every CommerceML source error."""


class CommerceMLSyntaxError(CommerceMLError):
    """A file is not well-formed XML (broken markup, truncated upload, wrong encoding).

    Attributes:
        source_file: The file name as given to the parser.
        line: 1-based line of the error, as reported by libxml2 (None if unknown).
        column: Column of the error (None if unknown).
        element: Slash-joined local-name path of the innermost element read before the error.
    """

    def __init__(
        self, message: str, *, source_file: str, line: int | None, column: int | None, element: str | None
    ) -> None:
        super().__init__(message)
        self.source_file = source_file
        self.line = line
        self.column = column
        self.element = element


class _RefusedFileError(CommerceMLError):
    """A file refused before any record is read, with the file and what was found in it."""

    def __init__(self, message: str, *, source_file: str, reason: str) -> None:
        super().__init__(message)
        self.source_file = source_file
        self.reason = reason


class CommerceMLUnsafeXMLError(_RefusedFileError):
    """A file declares a DOCTYPE or entities (XML bomb, external entity): refused, never parsed.

    Attributes:
        source_file: The file name as given to the parser.
        reason: What was found, e.g. ``"DOCTYPE declaration"``.
    """


class CommerceMLContentError(_RefusedFileError):
    """A file is not a CommerceML document (an HTML error page, JSON, a PDF, an empty or foreign XML).

    Refused by content, whatever its name: the root element must be ``КоммерческаяИнформация`` (or a
    bare ``Классификатор`` fragment, as some 1C versions write ``classifier.xml``).

    Attributes:
        source_file: The file name as given to the parser.
        reason: What was found, e.g. ``"root element <html>"``.
    """


class PropertyDictionary:
    """Property metadata and value dictionaries (``ВариантыЗначений/Справочник``) seen so far.

    A product's ``<ЗначенияСвойства><Значение>`` holds a value *id* when the property type is
    ``Справочник``; the text lives in the property dictionary, which a split export ships in a
    different file (``properties/``, ``propertiesGoods/``, an ``offers___`` file). Share one instance
    across the files of a package, parsing dictionary files first, to resolve ids to text.

    Attributes:
        names: Property ``Ид`` → ``Наименование``.
        types: Property ``Ид`` → ``ТипЗначений`` (``Справочник``, ``Строка``, ``Число``…).
        values: ``(property Ид, ИдЗначения)`` → ``Значение``.
    """

    __slots__ = ("names", "types", "values")

    def __init__(self) -> None:
        self.names: dict[str, str | None] = {}
        self.types: dict[str, str | None] = {}
        self.values: dict[tuple[str | None, str], str | None] = {}

    def lookup(self, property_id: str | None, raw: str | None) -> tuple[bool, str | None]:
        """Resolve a raw property value.

        Args:
            property_id: The property's ``Ид``.
            raw: The text of ``<Значение>`` (a value id for dictionary properties).

        Returns:
            ``(True, text)`` when ``raw`` is a known value id of that property, else ``(False, None)``.
        """
        if raw is not None and (property_id, raw) in self.values:
            return True, self.values[(property_id, raw)]
        return False, None


class _LocalNames(dict[Any, str]):
    """``{ns}local`` → ``local`` cache: tag strings repeat millions of times in a big file."""

    def __missing__(self, tag: Any) -> str:
        local = tag.rpartition("}")[2] if isinstance(tag, str) else ""
        if len(self) < 10_000:  # a hostile file could invent endless tag names
            self[tag] = local
        return local


_LN = _LocalNames()


def _text(el: Any) -> str | None:
    text = el.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def _attr(el: Any, name: str) -> str | None:
    value = el.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _full_text(el: Any) -> str | None:
    # Описание sometimes carries unescaped HTML, i.e. child elements; keep all of its text.
    text = "".join(el.itertext()).strip()
    return text or None


def _children(el: Any) -> dict[str, Any]:
    """Map local name → child element (the last one wins; repeated children are re-scanned where needed)."""
    ln = _LN
    return {ln[c.tag]: c for c in el}


def _child_text(kids: dict[str, Any], name: str) -> str | None:
    el = kids.get(name)
    return None if el is None else _text(el)


def _flag(text: str | None) -> bool | None:
    if text is None:
        return None
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def _is_deleted(mark: str | None, status: str | None) -> bool:
    if mark is not None and mark.lower() in _TRUE:
        return True
    return status is not None and status.strip().lower() in _DELETED_STATUS


def split_offer_id(raw: str | None) -> tuple[str | None, str | None]:
    """Split a 1C ``Ид`` of the form ``product#characteristic``.

    Args:
        raw: ``"uuid"``, ``"uuid#"`` or ``"uuid#uuid"`` (only the first ``#`` splits).

    Returns:
        ``(product_id, characteristic_id)``; either part is None when empty.
    """
    if raw is None:
        return None, None
    head, _, tail = raw.partition("#")
    return head or None, tail or None


def _requisites(el: Any | None) -> dict[str, Any]:
    """``ЗначенияРеквизитов`` → dict; a name repeated (``ОписаниеФайла`` per image) collects a list."""
    out: dict[str, Any] = {}
    if el is None:
        return out
    ln = _LN
    for req in el:
        name = None
        values: list[str | None] = []
        for c in req:
            local = ln[c.tag]
            if local == "Наименование":
                name = _text(c)
            elif local == "Значение":
                values.append(_text(c))
        if name is None:
            continue
        value: Any = values[0] if len(values) == 1 else (values or None)
        if name in out:
            previous = out[name]
            out[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[name] = value
    return out


def _characteristics(el: Any | None) -> list[Record]:
    if el is None:
        return []
    out = []
    for ch in el:
        kids = _children(ch)
        out.append(
            {
                "id": _child_text(kids, "Ид"),
                "name": _child_text(kids, "Наименование"),
                "value": _child_text(kids, "Значение"),
            }
        )
    return out


def _base_unit(el: Any | None) -> dict[str, str | None]:
    """``БазоваяЕдиница`` in its three forms: text short name + attributes (2.04), attributes only
    (2.07: ``Код``, ``НаименованиеПолное``, ``МеждународноеСокращение``, a ``Пересчет`` child, no
    text), text = the unit code (3.1). Kept apart; silver resolves the display unit."""
    if el is None:
        return dict.fromkeys(("unit", "unit_code", "unit_name", "unit_abbreviation"))
    return {
        "unit": _text(el),
        "unit_code": _attr(el, "Код"),
        "unit_name": _attr(el, "НаименованиеПолное"),
        "unit_abbreviation": _attr(el, "МеждународноеСокращение"),
    }


def _address(el: Any) -> Record:
    fields: dict[str, str | None] = {}
    presentation = None
    ln = _LN
    for c in el:
        local = ln[c.tag]
        if local == "Представление":
            presentation = _text(c)
        elif local == "АдресноеПоле":
            kids = _children(c)
            kind = _child_text(kids, "Тип")
            if kind is not None:
                fields[kind] = _child_text(kids, "Значение")
    return {"kind": _LN[el.tag], "presentation": presentation, "fields": fields}


def _contacts(el: Any) -> list[Record]:
    out = []
    for c in el:
        kids = _children(c)
        out.append(
            {
                "type": _child_text(kids, "Тип"),
                "value": _child_text(kids, "Значение"),
                "comment": _child_text(kids, "Комментарий"),
            }
        )
    return out


def _representatives(el: Any) -> list[Record]:
    out = []
    for rep in el:
        kids = _children(rep)
        # 2.03/2.04 wrap the person in Представитель/Контрагент; 2.05+ put the fields directly.
        inner = kids.get("Контрагент")
        if inner is not None:
            kids = _children(inner)
        out.append(
            {
                "relation": _child_text(kids, "Отношение"),
                "id": _child_text(kids, "Ид"),
                "name": _child_text(kids, "Наименование"),
            }
        )
    return out


def _bank_accounts(el: Any) -> list[Record]:
    out = []
    for acc in el:
        kids = _children(acc)
        bank = kids.get("Банк")
        bank_kids = _children(bank) if bank is not None else {}
        out.append(
            {
                "account": _child_text(kids, "НомерСчета"),
                "bank_name": _child_text(bank_kids, "Наименование"),
                "bik": _child_text(bank_kids, "БИК") or _child_text(bank_kids, "SWIFT"),
                "correspondent_account": _child_text(bank_kids, "СчетКорреспондентский"),
            }
        )
    return out


_CONTRAGENT_SCALARS = {
    "Ид": "id",
    "НомерВерсии": "version",
    "Наименование": "name",
    "ПолноеНаименование": "full_name",
    "ОфициальноеНаименование": "official_name",
    "Роль": "role",
    "ИНН": "inn",
    "КПП": "kpp",
    "КодПоОКПО": "okpo",
    "ОКПО": "okpo",
    "Фамилия": "last_name",
    "Имя": "first_name",
    "Отчество": "middle_name",
    "Комментарий": "comment",
}


def _collect_contragent(el: Any, rec: Record, ln: _LocalNames) -> None:
    for c in el:
        local = ln[c.tag]
        key = _CONTRAGENT_SCALARS.get(local)
        if key is not None:
            if rec.get(key) is None:
                rec[key] = _text(c)
        elif local in _ADDRESS_KINDS:
            rec["addresses"].append(_address(c))
        elif local == "Контакты":
            rec["contacts"].extend(_contacts(c))
        elif local == "Представители":
            rec["representatives"].extend(_representatives(c))
        elif local == "РасчетныеСчета":
            rec["bank_accounts"].extend(_bank_accounts(c))
        elif local == "ПометкаУдаления":
            rec["_mark"] = _text(c)
        elif local in _CONTRAGENT_WRAPPERS:
            _collect_contragent(c, rec, ln)


def _first_contact(contacts: list[Record], marker: str, needle: str | None) -> str | None:
    for contact in contacts:
        kind = (contact["type"] or "").lower()
        value = contact["value"]
        if marker in kind and value and (needle is None or needle in value):
            return value
    return None


def _decode_head(head: bytes) -> tuple[str, bool]:
    """Decode a file head for markup scanning; the flag says whether it was read as latin-1."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace"), False
    if len(head) >= 2 and (head[0] == 0 or head[1] == 0):
        return head.decode("utf-16-be" if head[0] == 0 else "utf-16-le", errors="replace"), False
    # Only ASCII markup matters for the scan, and latin-1 maps every byte 1:1, so this never fails
    # and character offsets are byte offsets.
    return head.decode("latin-1"), True


_START_TAG = re.compile(r"<([^\s/>]+)")
_DECLARED_ENCODING = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def declared_encoding(head: bytes) -> str:
    """The encoding a file declares in its XML declaration (``UTF-8`` when absent), BOM first.

    Args:
        head: The first bytes of the file.

    Returns:
        The encoding name as written (``"windows-1251"``, ``"UTF-8"``), or ``"UTF-16"`` for a UTF-16 BOM.
    """
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    text, _ = _decode_head(head[:512])
    match = _DECLARED_ENCODING.match(text.lstrip("\ufeff").removeprefix("\xef\xbb\xbf"))
    return match.group(1) if match else "UTF-8"


def _root_name(head: bytes, text: str, as_latin1: bool, start: int) -> str | None:
    if as_latin1:  # the tag name itself is not ASCII (Cyrillic): decode it for real
        try:
            text, start = head[start : start + 512].decode(declared_encoding(head), errors="replace"), 0
        except LookupError:
            return None
    match = _START_TAG.match(text, start)
    return match.group(1).rpartition(":")[2] if match else None


_HTML_DOCTYPE = re.compile(r"<!DOCTYPE\s+html\b", re.IGNORECASE)


def _refuse_content(source_file: str, reason: str) -> NoReturn:
    raise CommerceMLContentError(
        f"{source_file}: not a CommerceML document: {reason}", source_file=source_file, reason=reason
    )


def check_root(root: str | None, *, source_file: str) -> None:
    """Refuse a document whose root element is not a CommerceML root (:data:`ACCEPTED_ROOTS`).

    Args:
        root: The root element's local name (from :func:`check_prolog`).
        source_file: Name used in the error message.

    Raises:
        CommerceMLContentError: Another root (``<html>``, ``<error>``…).
    """
    if root is not None and root not in ACCEPTED_ROOTS:
        _refuse_content(source_file, f"root element <{root}>, expected <{ROOT}>")


def check_prolog(head: bytes, *, source_file: str, complete: bool) -> str | None:
    """Refuse a document whose prolog declares a DOCTYPE (and so possibly entities).

    Args:
        head: The first bytes of the file (up to :data:`PROLOG_LIMIT`).
        source_file: Name used in the error message.
        complete: True when ``head`` is the whole file (a short file, not a cut-off prolog).

    Returns:
        The root element's local name.

    Raises:
        CommerceMLUnsafeXMLError: A ``<!DOCTYPE``/``<!ENTITY`` precedes the root element, or the
            prolog is longer than :data:`PROLOG_LIMIT` bytes.
        CommerceMLContentError: The file is empty, holds no element, is not XML at all (text, JSON,
            a PDF) or is an HTML page (``<!DOCTYPE html>``: a web server's error page saved by 1C).
    """
    text, as_latin1 = _decode_head(head)
    # A UTF-8 BOM reads as three latin-1 characters, a UTF-16 one as U+FEFF.
    i = 3 if text.startswith("\xef\xbb\xbf") else (1 if text.startswith("\ufeff") else 0)
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if text.startswith("<?", i):
            terminator = "?>"
        elif text.startswith("<!--", i):
            terminator = "-->"
        elif text.startswith("<!", i):
            if _HTML_DOCTYPE.match(text, i):
                _refuse_content(source_file, "an HTML page (<!DOCTYPE html>)")
            reason = "ENTITY declaration" if "<!ENTITY" in text.upper() else "DOCTYPE declaration"
            raise CommerceMLUnsafeXMLError(
                f"{source_file}: refused: {reason} in the prolog (DTDs and entities are not allowed in "
                "CommerceML; possible XML bomb or external entity)",
                source_file=source_file,
                reason=reason,
            )
        elif text[i] != "<":
            snippet = head[i : i + 24].decode("utf-8", errors="replace") if as_latin1 else text[i : i + 24]
            _refuse_content(source_file, f"not XML: it starts with {snippet!r}")
        else:
            return _root_name(head, text, as_latin1, i)
        end = text.find(terminator, i + 2)
        if end < 0:
            break
        i = end + len(terminator)
    if not complete:
        raise CommerceMLUnsafeXMLError(
            f"{source_file}: refused: no root element within the first {PROLOG_LIMIT} bytes",
            source_file=source_file,
            reason="prolog too long",
        )
    _refuse_content(
        source_file, "no root element" if text.strip("\xef\xbb\xbf\ufeff \t\r\n") else "an empty file"
    )


class _PrefixedReader:
    """Replays bytes already read for the prolog check, then continues with the stream."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._stream.read(size)


def _checked_input(source: Source, source_file: str) -> tuple[Any, str | None]:
    """Check the prolog; return the lxml input (a path, or a stream replaying the head) and the root name."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            head = fh.read(PROLOG_LIMIT)
            complete = len(head) < PROLOG_LIMIT or not fh.read(1)
        root = check_prolog(head, source_file=source_file, complete=complete)
        check_root(root, source_file=source_file)
        return os.fspath(source), root  # libxml2 reads a path itself: fastest
    head = source.read(PROLOG_LIMIT)
    root = check_prolog(head, source_file=source_file, complete=len(head) < PROLOG_LIMIT)
    check_root(root, source_file=source_file)
    return _PrefixedReader(head, source), root


def _default_name(source: Source) -> str:
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _refuse_doctype(el: Any, source_file: str) -> None:
    # Second line of defence behind check_prolog: whatever slipped past the prolog scan.
    docinfo = el.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CommerceMLUnsafeXMLError(
            f"{source_file}: refused: DOCTYPE declaration",
            source_file=source_file,
            reason="DOCTYPE declaration",
        )


def _element_path(el: Any) -> str:
    names = []
    while el is not None:
        names.append(_LN[el.tag])
        el = el.getparent()
    return "/".join(reversed(names))


def _syntax_error(
    exc: etree.XMLSyntaxError, source_file: str, last: Any | None, root: str | None
) -> CommerceMLSyntaxError:
    line = exc.lineno or None
    column = exc.position[1] if exc.position else None
    where = f"line {line}" + (f", column {column}" if column else "")
    if last is not None:
        node = last.getroottree().getroot()
        while len(node):
            node = node[-1]
        element: str | None = _element_path(node)
        near = f" after <{element}>"
    else:  # nothing reported yet: the root (from the prolog scan) is all we know
        element = root
        near = f" inside <{element}>" if element else ""
    return CommerceMLSyntaxError(
        f"{source_file}: malformed XML at {where}{near}: {exc.msg}",
        source_file=source_file,
        line=line,
        column=column,
        element=element,
    )


class _FileParser:
    """State for one file: its name, the shared dictionary, section headers and counters."""

    def __init__(self, source_file: str, dictionary: PropertyDictionary) -> None:
        self.source_file = source_file
        self.dictionary = dictionary
        self.sections: list[Record] = []
        # Element-form СодержитТолькоИзменения, keyed by (section, line): lxml element proxies are
        # recreated between calls, so id() of an element is not a stable key.
        self.element_flags: dict[tuple[str, int | None], bool | None] = {}
        self.counts: dict[str, int] = {}
        self.dispatch = {
            "Группа": self._group,
            "Свойство": self._property,
            "СвойствоНоменклатуры": self._property,
            "Справочник": self._option,
            "ТипЦены": self._price_type,
            "Склад": self._warehouse,
            "ЕдиницаИзмерения": self._unit,
            "Товар": self._product,
            "Предложение": self._offer,
            "Контрагент": self._standalone_contragent,
            "Документ": self._document,
            "СодержитТолькоИзменения": self._delta_element,
            "Контейнер": self._container,
            ROOT: self._root,
        }
        for name in SECTIONS:
            self.dispatch[name] = self._section

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _release(el: Any) -> None:
        el.clear(keep_tail=False)
        parent = el.getparent()
        if parent is not None:
            while el.getprevious() is not None:
                del parent[0]

    def _property_values(self, el: Any, product_id: str | None, offer_id: str | None) -> list[Record]:
        # Hot path (every product and offer of a big catalog): lookups inlined on purpose.
        out = []
        ln = _LN
        names = self.dictionary.names
        values = self.dictionary.values
        source_file = self.source_file
        for pv in el:
            property_id = None
            property_name = None
            raws: list[str | None] = []
            for c in pv:
                local = ln[c.tag]
                text = c.text
                if text is not None:
                    text = text.strip() or None
                if local == "Ид":
                    property_id = text
                elif local == "Значение":
                    raws.append(text)
                elif local == "Наименование":
                    property_name = text
            if property_name is None and property_id is not None:
                property_name = names.get(property_id)
            line = pv.sourceline
            for raw in raws or [None]:
                if raw is not None and (property_id, raw) in values:
                    value, value_id = values[(property_id, raw)], raw
                else:
                    value, value_id = raw, None
                out.append(
                    {
                        "product_id": product_id,
                        "offer_id": offer_id,
                        "property_id": property_id,
                        "property_name": property_name,
                        "value": value,
                        "value_id": value_id,
                        "raw_value": raw,
                        "source_file": source_file,
                        "sourceline": line,
                    }
                )
        return out

    def _contragent(self, el: Any, document_id: str | None) -> Record:
        rec: Record = dict.fromkeys(
            (
                "id",
                "version",
                "name",
                "full_name",
                "official_name",
                "role",
                "inn",
                "kpp",
                "okpo",
                "last_name",
                "first_name",
                "middle_name",
                "comment",
            )
        )
        rec.update(addresses=[], contacts=[], representatives=[], bank_accounts=[], _mark=None)
        _collect_contragent(el, rec, _LN)
        mark = rec.pop("_mark")
        rec["deleted"] = _is_deleted(mark, _attr(el, "Статус"))
        by_kind = {a["kind"]: a["presentation"] for a in rec["addresses"]}
        rec["registration_address"] = by_kind.get("АдресРегистрации")
        rec["legal_address"] = by_kind.get("ЮридическийАдрес")
        rec["address"] = by_kind.get("Адрес")
        rec["email"] = _first_contact(rec["contacts"], "почт", "@")
        rec["phone"] = _first_contact(rec["contacts"], "телефон", None)
        rec["document_id"] = document_id
        rec["source_file"] = self.source_file
        rec["sourceline"] = el.sourceline
        return rec

    # -- handlers: each returns the records for one element, or None to leave it in place -----

    def _group(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "Группы":
            return None
        holder = parent.getparent()
        if holder is not None and _LN[holder.tag] not in _REFERENCE_PARENTS and _LN[holder.tag] != "Группа":
            return None
        kids = _children(el)
        group_id = _child_text(kids, "Ид")
        name = _child_text(kids, "Наименование")
        ancestors = []
        node = holder
        while node is not None and _LN[node.tag] == "Группа":
            anc = _children(node)
            ancestors.append((_child_text(anc, "Ид"), _child_text(anc, "Наименование")))
            up = node.getparent()
            node = up.getparent() if up is not None and _LN[up.tag] == "Группы" else None
        ancestors.reverse()
        path_names = [a[1] or "" for a in ancestors] + [name or ""]
        return [
            (
                "groups",
                {
                    "id": group_id,
                    "parent_id": ancestors[-1][0] if ancestors else None,
                    "name": name,
                    "path": " / ".join(path_names),
                    "path_ids": [a[0] for a in ancestors] + [group_id],
                    "depth": len(ancestors),
                    "description": _child_text(kids, "Описание"),
                    "deleted": _is_deleted(_child_text(kids, "ПометкаУдаления"), _attr(el, "Статус")),
                    "version": _child_text(kids, "НомерВерсии"),
                    "source_file": self.source_file,
                    "sourceline": el.sourceline,
                },
            )
        ]

    def _property(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "Свойства":
            return None
        kids = _children(el)
        property_id = _child_text(kids, "Ид")
        name = _child_text(kids, "Наименование")
        value_type = _child_text(kids, "ТипЗначений")
        dictionary = self.dictionary
        dictionary.names[property_id] = name  # type: ignore[index]
        dictionary.types[property_id] = value_type  # type: ignore[index]
        out: list[tuple[str, Record]] = [
            (
                "properties",
                {
                    "id": property_id,
                    "name": name,
                    "value_type": value_type,
                    "for_goods": _flag(_child_text(kids, "ДляТоваров")),
                    "for_offers": _flag(_child_text(kids, "ДляПредложений")),
                    "for_documents": _flag(_child_text(kids, "ДляДокументов")),
                    "required": _flag(_child_text(kids, "Обязательное")),
                    "multiple": _flag(_child_text(kids, "Множественное")),
                    "external": _flag(_child_text(kids, "Внешний")),
                    "informational": _flag(_child_text(kids, "Информационное")),
                    "description": _child_text(kids, "Описание"),
                    "deleted": _is_deleted(_child_text(kids, "ПометкаУдаления"), _attr(el, "Статус")),
                    "version": _child_text(kids, "НомерВерсии"),
                    "source_file": self.source_file,
                    "sourceline": el.sourceline,
                },
            )
        ]
        variants = kids.get("ВариантыЗначений")
        if variants is not None:
            # <Справочник> options were already streamed by _option; plain <Значение> ones remain.
            ln = _LN
            for v in variants:
                if ln[v.tag] == "Значение":
                    out.append(
                        (
                            "property_options",
                            {
                                "property_id": property_id,
                                "value_id": None,
                                "value": _text(v),
                                "source_file": self.source_file,
                                "sourceline": v.sourceline,
                            },
                        )
                    )
        return out

    def _option(self, el: Any) -> list[tuple[str, Record]] | None:
        # Streamed one by one: a dictionary property can carry tens of thousands of values.
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "ВариантыЗначений":
            return None
        prop = parent.getparent()
        property_id = None
        if prop is not None:
            for c in prop:  # Ид comes first, long before the options
                if _LN[c.tag] == "Ид":
                    property_id = _text(c)
                    break
        kids = _children(el)
        value_id = _child_text(kids, "ИдЗначения")
        value = _child_text(kids, "Значение")
        if value_id is not None:
            self.dictionary.values[(property_id, value_id)] = value
        return [
            (
                "property_options",
                {
                    "property_id": property_id,
                    "value_id": value_id,
                    "value": value,
                    "source_file": self.source_file,
                    "sourceline": el.sourceline,
                },
            )
        ]

    def _price_type(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "ТипыЦен":
            return None
        kids = _children(el)
        tax = kids.get("Налог")
        tax_kids = _children(tax) if tax is not None else {}
        return [
            (
                "price_types",
                {
                    "id": _child_text(kids, "Ид"),
                    "name": _child_text(kids, "Наименование"),
                    "currency": _child_text(kids, "Валюта"),
                    "tax_name": _child_text(tax_kids, "Наименование"),
                    "tax_included": _flag(_child_text(tax_kids, "УчтеноВСумме")),
                    "description": _child_text(kids, "Описание"),
                    "deleted": _is_deleted(_child_text(kids, "ПометкаУдаления"), _attr(el, "Статус")),
                    "version": _child_text(kids, "НомерВерсии"),
                    "source_file": self.source_file,
                    "sourceline": el.sourceline,
                },
            )
        ]

    def _warehouse(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        # <Склад> also appears inside offers (stock shape 1), rests and documents: those belong to
        # the enclosing record and must not be cleared here.
        if parent is None or _LN[parent.tag] != "Склады":
            return None
        holder = parent.getparent()
        if holder is not None and _LN[holder.tag] not in _REFERENCE_PARENTS:
            return None
        kids = _children(el)
        address = kids.get("Адрес")
        contacts = kids.get("Контакты")
        return [
            (
                "warehouses",
                {
                    "id": _child_text(kids, "Ид"),
                    "name": _child_text(kids, "Наименование"),
                    "comment": _child_text(kids, "Комментарий"),
                    "address": _address(address)["presentation"] if address is not None else None,
                    "contacts": _contacts(contacts) if contacts is not None else [],
                    "deleted": _is_deleted(_child_text(kids, "ПометкаУдаления"), _attr(el, "Статус")),
                    "version": _child_text(kids, "НомерВерсии"),
                    "source_file": self.source_file,
                    "sourceline": el.sourceline,
                },
            )
        ]

    def _unit(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "ЕдиницыИзмерения":
            return None
        kids = _children(el)
        return [
            (
                "units",
                {
                    "id": _child_text(kids, "Ид"),
                    "code": _child_text(kids, "Код"),
                    "name": _child_text(kids, "НаименованиеКраткое"),
                    "full_name": _child_text(kids, "НаименованиеПолное"),
                    "international_abbreviation": _child_text(kids, "МеждународноеСокращение"),
                    "deleted": _is_deleted(_child_text(kids, "ПометкаУдаления"), _attr(el, "Статус")),
                    "version": _child_text(kids, "НомерВерсии"),
                    "source_file": self.source_file,
                    "sourceline": el.sourceline,
                },
            )
        ]

    def _product(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "Товары":
            return None
        holder = parent.getparent()
        if holder is not None and _LN[holder.tag] != "Каталог":
            return None  # a document line: read by _document
        ln = _LN
        kids: dict[str, Any] = {}
        group_ids: list[str | None] = []
        images: list[str | None] = []
        barcodes: list[str | None] = []
        for c in el:
            local = ln[c.tag]
            kids[local] = c
            if local == "Картинка":
                image = _text(c)
                if image is not None:
                    images.append(image)
            elif local == "Штрихкод":
                barcode = _text(c)
                if barcode is not None:
                    barcodes.append(barcode)
            elif local == "Группы":
                group_ids.extend(_text(g) for g in c)
        raw_id = _child_text(kids, "Ид")
        parent_id, characteristic_id = split_offer_id(raw_id)
        maker = kids.get("Изготовитель")
        maker_kids = _children(maker) if maker is not None else {}
        description = kids.get("Описание")
        values_el = kids.get("ЗначенияСвойств")
        values = self._property_values(values_el, raw_id, None) if values_el is not None else []
        brand = _child_text(kids, "Бренд") or _child_text(kids, "ТорговаяМарка")
        if brand is None:
            for pv in values:
                if (pv["property_name"] or "").strip().lower() in BRAND_PROPERTY_NAMES and pv["value"]:
                    brand = pv["value"]
                    break
        taxes = kids.get("СтавкиНалогов")
        product = {
            "id": raw_id,
            "parent_id": parent_id,
            "characteristic_id": characteristic_id,
            "sku": _child_text(kids, "Артикул"),
            "name": _child_text(kids, "Наименование"),
            "full_name": _child_text(kids, "ПолноеНаименование"),
            "group_ids": [g for g in group_ids if g is not None],
            "description": _full_text(description) if description is not None else None,
            **_base_unit(kids.get("БазоваяЕдиница")),
            "barcode": barcodes[0] if barcodes else None,
            "barcodes": barcodes,
            "country": _child_text(kids, "Страна"),
            "weight": _child_text(kids, "Вес"),
            "manufacturer_id": _child_text(maker_kids, "Ид"),
            "manufacturer": _child_text(maker_kids, "Наименование"),
            "brand": brand,
            "status": _attr(el, "Статус") or _child_text(kids, "Статус"),
            "deleted": _is_deleted(
                _child_text(kids, "ПометкаУдаления"), _attr(el, "Статус") or _child_text(kids, "Статус")
            ),
            "version": _child_text(kids, "НомерВерсии"),
            "images": images,
            "tax_rates": [
                {"name": _child_text(t, "Наименование"), "rate": _child_text(t, "Ставка")}
                for t in (_children(r) for r in taxes)
            ]
            if taxes is not None
            else [],
            "characteristics": _characteristics(kids.get("ХарактеристикиТовара")),
            "requisites": _requisites(kids.get("ЗначенияРеквизитов")),
            "source_file": self.source_file,
            "sourceline": el.sourceline,
        }
        out: list[tuple[str, Record]] = [("products", product)]
        out.extend(("property_values", pv) for pv in values)
        return out

    def _offer(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "Предложения":
            return None
        ln = _LN
        kids: dict[str, Any] = {}
        attribute_stocks = []
        group_ids: list[str] = []
        descriptive = False
        for c in el:
            local = ln[c.tag]
            kids[local] = c
            if local == "Склад":
                attribute_stocks.append(c)
            elif local not in _NON_DESCRIPTIVE_OFFER_CHILDREN:
                descriptive = True
                if local == "Группы":  # an offers-only export (УТ 10.3) carries the category here
                    group_ids.extend(g for g in (_text(g) for g in c) if g is not None)
        raw_id = _child_text(kids, "Ид")
        product_id, characteristic_id = split_offer_id(raw_id)
        if characteristic_id is None:
            characteristic_id = _child_text(kids, "ИдХарактеристики")
        target = {"offer_id": raw_id, "product_id": product_id, "characteristic_id": characteristic_id}
        out: list[tuple[str, Record]] = []
        if descriptive:
            out.append(("offers", self._offer_record(el, kids, target, group_ids)))
        prices = kids.get("Цены")
        if prices is not None:
            out.extend(self._offer_prices(prices, target))
        out.extend(self._offer_stocks(kids, attribute_stocks, target))
        values_el = kids.get("ЗначенияСвойств")
        if values_el is not None:
            out.extend(("property_values", pv) for pv in self._property_values(values_el, product_id, raw_id))
        return out

    def _offer_record(self, el: Any, kids: dict[str, Any], target: Record, group_ids: list[str]) -> Record:
        status = _attr(el, "Статус") or _child_text(kids, "Статус")
        return {
            "id": target["offer_id"],
            "product_id": target["product_id"],
            "characteristic_id": target["characteristic_id"],
            "name": _child_text(kids, "Наименование"),
            "sku": _child_text(kids, "Артикул"),
            "barcode": _child_text(kids, "Штрихкод"),
            "group_ids": group_ids,
            **_base_unit(kids.get("БазоваяЕдиница")),
            "quantity": _child_text(kids, "Количество"),
            "status": status,
            "deleted": _is_deleted(_child_text(kids, "ПометкаУдаления"), status),
            "version": _child_text(kids, "НомерВерсии"),
            "characteristics": _characteristics(kids.get("ХарактеристикиТовара")),
            "requisites": _requisites(kids.get("ЗначенияРеквизитов")),
            "source_file": self.source_file,
            "sourceline": el.sourceline,
        }

    def _offer_prices(self, prices: Any, target: Record) -> list[tuple[str, Record]]:
        ln = _LN
        out: list[tuple[str, Record]] = []
        for price in prices:
            pk = {ln[c.tag]: c for c in price}
            tax = pk.get("Налог")
            tax_kids = _children(tax) if tax is not None else {}
            out.append(
                (
                    "prices",
                    {
                        **target,
                        "price_type_id": _child_text(pk, "ИдТипаЦены"),
                        "price": _child_text(pk, "ЦенаЗаЕдиницу"),
                        "currency": _child_text(pk, "Валюта"),
                        "unit": _child_text(pk, "Единица"),
                        "coefficient": _child_text(pk, "Коэффициент"),
                        "min_quantity": _child_text(pk, "МинКоличество"),
                        "tax_name": _child_text(tax_kids, "Наименование"),
                        "tax_included": _flag(_child_text(tax_kids, "УчтеноВСумме")),
                        "source_file": self.source_file,
                        "sourceline": price.sourceline,
                    },
                )
            )
        return out

    def _offer_stocks(
        self, kids: dict[str, Any], attribute_stocks: list[Any], target: Record
    ) -> list[tuple[str, Record]]:
        """Stock rows of every shape (README table): 2.07 attributes, 2.08+ elements, totals."""
        source_file = self.source_file

        def row(warehouse_id: str | None, quantity: str | None, shape: str, line: int | None) -> Record:
            return {
                **target,
                "warehouse_id": warehouse_id,
                "quantity": quantity,
                "shape": shape,
                "source_file": source_file,
                "sourceline": line,
            }

        out = [
            ("stocks", row(_attr(s, "ИдСклада"), _attr(s, "КоличествоНаСкладе"), "attribute", s.sourceline))
            for s in attribute_stocks
        ]
        rests = kids.get("Остатки")
        if rests is not None:
            ln = _LN
            for rest in rests:
                rest_quantity = None
                stores = []
                for c in rest:
                    local = ln[c.tag]
                    if local == "Склад":
                        stores.append(c)
                    elif local == "Количество":
                        rest_quantity = _text(c)
                for store in stores:
                    sk = _children(store)
                    quantity = _child_text(sk, "Количество") or rest_quantity
                    out.append(("stocks", row(_child_text(sk, "Ид"), quantity, "element", store.sourceline)))
                if not stores:
                    out.append(("stocks", row(None, rest_quantity, "element_total", rest.sourceline)))
        total = kids.get("Количество")
        if total is not None:
            out.append(("stocks", row(None, _text(total), "offer_total", total.sourceline)))
        return out

    def _standalone_contragent(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is None or _LN[parent.tag] != "Контрагенты":
            return None  # a representative (Представитель/Контрагент)
        holder = parent.getparent()
        if holder is not None and _LN[holder.tag] == "Документ":
            return None  # read by _document, which knows the document id
        return [("contragents", self._contragent(el, None))]

    def _document(self, el: Any) -> list[tuple[str, Record]] | None:
        parent = el.getparent()
        if parent is not None and _LN[parent.tag] not in (ROOT, "Контейнер"):
            return None
        ln = _LN
        kids = _children(el)
        document_id = _child_text(kids, "Ид")
        source_file = self.source_file
        out: list[tuple[str, Record]] = []
        contragents = []
        agents = kids.get("Контрагенты")
        if agents is not None:
            for agent in agents:
                if ln[agent.tag] == "Контрагент":
                    contragents.append(self._contragent(agent, document_id))
        warehouse_ids = []
        stores = kids.get("Склады")
        if stores is not None:
            warehouse_ids = [_child_text(_children(s), "Ид") for s in stores]
        taxes = []
        tax_list = kids.get("Налоги")
        if tax_list is not None:
            for tax in tax_list:
                tk = _children(tax)
                taxes.append(
                    {
                        "name": _child_text(tk, "Наименование"),
                        "included": _flag(_child_text(tk, "УчтеноВСумме")),
                        "sum": _child_text(tk, "Сумма"),
                        "rate": _child_text(tk, "Ставка"),
                    }
                )
        out.append(
            (
                "documents",
                {
                    "id": document_id,
                    "number": _child_text(kids, "Номер"),
                    "number_1c": _child_text(kids, "Номер1С"),
                    "date": _child_text(kids, "Дата"),
                    "date_1c": _child_text(kids, "Дата1С"),
                    "time": _child_text(kids, "Время"),
                    "operation": _child_text(kids, "ХозОперация"),
                    "role": _child_text(kids, "Роль"),
                    "currency": _child_text(kids, "Валюта"),
                    "rate": _child_text(kids, "Курс"),
                    "sum": _child_text(kids, "Сумма"),
                    "comment": _child_text(kids, "Комментарий"),
                    "payment_due": _child_text(kids, "СрокПлатежа"),
                    "deleted": _is_deleted(_child_text(kids, "ПометкаУдаления"), _attr(el, "Статус")),
                    "version": _child_text(kids, "НомерВерсии"),
                    "contragent_ids": [c["id"] for c in contragents],
                    "contragent_roles": [c["role"] for c in contragents],
                    "warehouse_ids": warehouse_ids,
                    "taxes": taxes,
                    "requisites": _requisites(kids.get("ЗначенияРеквизитов")),
                    "source_file": source_file,
                    "sourceline": el.sourceline,
                },
            )
        )
        out.extend(("contragents", c) for c in contragents)
        goods = kids.get("Товары")
        if goods is not None:
            line_no = 0
            for item in goods:
                if ln[item.tag] != "Товар":
                    continue
                line_no += 1
                ik = _children(item)
                raw_id = _child_text(ik, "Ид")
                product_id, characteristic_id = split_offer_id(raw_id)
                unit = ik.get("Единица")
                base_unit = ik.get("БазоваяЕдиница")
                unit_kids = _children(unit) if unit is not None else {}
                out.append(
                    (
                        "document_items",
                        {
                            "document_id": document_id,
                            "line_no": line_no,
                            "item_id": raw_id,
                            "product_id": product_id,
                            "characteristic_id": characteristic_id,
                            "catalog_id": _child_text(ik, "ИдКаталога"),
                            "sku": _child_text(ik, "Артикул"),
                            "name": _child_text(ik, "Наименование"),
                            "unit": (_child_text(unit_kids, "НаименованиеКраткое") or _text(unit))
                            if unit is not None
                            else (_text(base_unit) if base_unit is not None else None),
                            "unit_code": (_child_text(unit_kids, "Код"))
                            if unit is not None
                            else (_attr(base_unit, "Код") if base_unit is not None else None),
                            "price": _child_text(ik, "ЦенаЗаЕдиницу") or _child_text(ik, "Цена"),
                            "quantity": _child_text(ik, "Количество"),
                            "sum": _child_text(ik, "Сумма"),
                            "coefficient": _child_text(ik, "Коэффициент"),
                            "characteristics": _characteristics(ik.get("ХарактеристикиТовара")),
                            "requisites": _requisites(ik.get("ЗначенияРеквизитов")),
                            "source_file": source_file,
                            "sourceline": item.sourceline,
                        },
                    )
                )
        return out

    def _delta_element(self, el: Any) -> None:
        parent = el.getparent()
        if parent is not None:
            self.element_flags[(_LN[parent.tag], parent.sourceline)] = _flag(_text(el))
        return None

    def _section(self, el: Any) -> list[tuple[str, Record]] | None:
        local = _LN[el.tag]
        parent = el.getparent()
        if parent is not None and _LN[parent.tag] != ROOT:
            return None  # e.g. Документ/Контрагенты
        kids = _children(el)
        owner = kids.get("Владелец")
        owner_kids = _children(owner) if owner is not None else {}
        flag = _flag(el.get("СодержитТолькоИзменения"))
        if flag is None:
            flag = self.element_flags.pop((local, el.sourceline), None)
        self.sections.append(
            {
                "section": local,
                "id": _child_text(kids, "Ид"),
                "name": _child_text(kids, "Наименование"),
                "catalog_id": _child_text(kids, "ИдКаталога"),
                "classifier_id": _child_text(kids, "ИдКлассификатора"),
                "owner_id": _child_text(owner_kids, "Ид"),
                "owner_name": _child_text(owner_kids, "Наименование"),
                "contains_only_changes": flag,
            }
        )
        return []

    def _container(self, el: Any) -> list[tuple[str, Record]] | None:
        # CML 3.x wraps each document in its own <Контейнер>: release the emptied wrappers too.
        return []

    def _root(self, el: Any) -> list[tuple[str, Record]] | None:
        return None  # attributes are read from context.root once the loop ends

    # -- driver ------------------------------------------------------------------------------

    def header(self, root: Any | None) -> Record:
        """The ``file_headers`` record; a fragment root (bare ``<Классификатор>``) is in ``sections``."""

        def attr(name: str) -> str | None:
            return _attr(root, name) if root is not None else None

        root_name = _LN[root.tag] if root is not None else None
        flags = [s["contains_only_changes"] for s in self.sections if s["contains_only_changes"] is not None]
        root_flag = _flag(attr("СодержитТолькоИзменения"))
        if root_flag is not None:
            flags.append(root_flag)
        by_section: dict[str, Record] = {}
        for s in self.sections:
            by_section.setdefault(s["section"], s)
        offers_section = by_section.get("ПакетПредложений") or by_section.get("ИзмененияПакетаПредложений")
        tag = root.tag if root is not None else ""
        return {
            "source_file": self.source_file,
            "root": root_name,
            "namespace": tag[1:].partition("}")[0] if tag.startswith("{") else None,
            "schema_version": attr("ВерсияСхемы"),
            "generated_at": attr("ДатаФормирования"),
            "exchange_id": attr("Ид"),
            "encoding": root.getroottree().docinfo.encoding if root is not None else None,
            "contains_only_changes": any(flags) if flags else None,
            "classifier_id": (by_section.get("Классификатор") or {}).get("id"),
            "catalog_id": (by_section.get("Каталог") or {}).get("id"),
            "offers_package_id": (offers_section or {}).get("id"),
            "sections": self.sections,
            "record_counts": dict(self.counts),
        }

    def run(self, source: Any, root_name: str | None) -> Iterator[tuple[str, Record]]:
        context = etree.iterparse(source, events=("end",), tag=_ITERPARSE_TAGS, **_PARSER_OPTIONS)
        dispatch = self.dispatch
        ln = _LN
        counts = self.counts
        release = self._release
        el = None
        checked = False
        try:
            for _, el in context:
                if not checked:
                    _refuse_doctype(el, self.source_file)
                    checked = True
                records = dispatch[ln[el.tag]](el)
                if records is None:
                    continue
                for entity, _ in records:
                    counts[entity] = counts.get(entity, 0) + 1
                release(el)
                yield from records
        except etree.XMLSyntaxError as exc:
            raise _syntax_error(exc, self.source_file, el, root_name) from exc
        root = context.root
        header = self.header(root)
        counts["file_headers"] = 1
        header["record_counts"] = dict(counts)
        yield "file_headers", header


def parse_file(
    source: Source, *, source_file: str | None = None, dictionary: PropertyDictionary | None = None
) -> Iterator[tuple[str, Record]]:
    """Stream the records of one CommerceML file.

    Args:
        source: A path, or a binary file object (e.g. a ``zipfile`` member).
        source_file: Name stored in every record's ``source_file`` (default: the path as given).
        dictionary: Property dictionaries shared across a package; property values whose value id
            is known are resolved to text. The parser also adds every ``Свойство`` it reads to it.
            A fresh one is used when omitted (in-file resolution only).

    Yields:
        ``(entity, record)`` pairs, entity in :data:`ENTITIES`, in document order (nested groups
        before their parent); the last pair is always ``("file_headers", header)``.

    Raises:
        CommerceMLUnsafeXMLError: The file declares a DOCTYPE/entities.
        CommerceMLContentError: The file is not a CommerceML document (see :func:`check_prolog`,
            :func:`check_root`).
        CommerceMLSyntaxError: The file is not well-formed XML.
    """
    name = source_file if source_file is not None else _default_name(source)
    parser = _FileParser(name, dictionary if dictionary is not None else PropertyDictionary())
    yield from parser.run(*_checked_input(source, name))


def read_header(source: Source, *, source_file: str | None = None, limit: int = 256 * 1024) -> Record:
    """Sniff a file's head (no full parse): root, schema version, sections and record kinds seen.

    Used to classify files of a package by content. Only the first ``limit`` bytes are parsed, so a
    flag or section that appears later is not seen here (:func:`parse_file` reports all of them).

    Args:
        source: A path or a binary file object.
        source_file: Name used in error messages.
        limit: Bytes to parse at most.

    Returns:
        ``{"root", "namespace", "schema_version", "generated_at", "encoding",
        "contains_only_changes", "sections", "kinds"}`` where ``sections`` lists
        ``"<section>/<child>"`` local-name pairs seen and ``kinds`` the record kinds found
        (``groups``, ``properties``, ``price_types``, ``warehouses``, ``units``, ``goods``,
        ``offers``, ``prices``, ``rests``, ``contragents``, ``documents``).

    Raises:
        CommerceMLUnsafeXMLError: The file declares a DOCTYPE/entities.
        CommerceMLContentError: The file is not a CommerceML document (see :func:`check_prolog`,
            :func:`check_root`).
        CommerceMLSyntaxError: The parsed head is not well-formed XML.
    """
    name = source_file if source_file is not None else _default_name(source)
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            return _sniff(fh, name, limit)
    return _sniff(source, name, limit)


_SECTION_LISTS = frozenset(
    {"Группы", "Свойства", "ТипыЦен", "Склады", "ЕдиницыИзмерения", "Товары", "Предложения", "Контрагент"}
)
_KIND_BY_RECORD = {
    ("Группы", "Группа"): "groups",
    ("Свойства", "Свойство"): "properties",
    ("Свойства", "СвойствоНоменклатуры"): "properties",
    ("ТипыЦен", "ТипЦены"): "price_types",
    ("Склады", "Склад"): "warehouses",
    ("ЕдиницыИзмерения", "ЕдиницаИзмерения"): "units",
}


def _sniff(stream: IO[bytes], name: str, limit: int) -> Record:
    head = stream.read(PROLOG_LIMIT)
    root_name = check_prolog(head, source_file=name, complete=len(head) < PROLOG_LIMIT)
    check_root(root_name, source_file=name)
    parser = etree.XMLPullParser(events=("start", "end"), **_PARSER_OPTIONS)
    stack: list[str] = []
    info: Record = {
        "root": None,
        "namespace": None,
        "schema_version": None,
        "generated_at": None,
        "encoding": declared_encoding(head),
        "contains_only_changes": None,
        "sections": [],
        "kinds": [],
    }
    sections: list[str] = []
    kinds: set[str] = set()
    flags: list[bool] = []
    fed = 0
    chunk = head
    try:
        while chunk:
            parser.feed(chunk)
            fed += len(chunk)
            for event, el in parser.read_events():
                local = _LN[el.tag]
                if event == "start":
                    if not stack:
                        _refuse_doctype(el, name)
                        info["root"] = local
                        tag = el.tag
                        info["namespace"] = tag[1:].partition("}")[0] if tag.startswith("{") else None
                        info["schema_version"] = _attr(el, "ВерсияСхемы")
                        info["generated_at"] = _attr(el, "ДатаФормирования")
                    parent = stack[-1] if stack else None
                    if local in SECTIONS or parent is None:
                        flag = _flag(el.get("СодержитТолькоИзменения"))
                        if flag is not None:
                            flags.append(flag)
                    if parent in SECTIONS and local in _SECTION_LISTS and "Документ" not in stack:
                        pair = f"{parent}/{local}"
                        if pair not in sections:
                            sections.append(pair)
                    if local == "Документ" and parent in (None, ROOT, "Контейнер"):
                        kinds.add("documents")
                    if local == "Контрагент" and parent == "Контрагенты" and "Документ" not in stack:
                        kinds.add("contragents")
                    if local == "Товар" and parent == "Товары" and len(stack) >= 2 and stack[-2] == "Каталог":
                        kinds.add("goods")
                    kind = _KIND_BY_RECORD.get((parent, local)) if parent is not None else None
                    if kind is not None and "Документ" not in stack:
                        kinds.add(kind)
                    stack.append(local)
                else:
                    stack.pop()
                    if local == "СодержитТолькоИзменения":
                        flag = _flag(_text(el))
                        if flag is not None:
                            flags.append(flag)
                    elif local == "Предложение":
                        names = {_LN[c.tag] for c in el}
                        if "Цены" in names:
                            kinds.add("prices")
                        if "Остатки" in names or "Склад" in names or "Количество" in names:
                            kinds.add("rests")
                        if names - _NON_DESCRIPTIVE_OFFER_CHILDREN:
                            kinds.add("offers")
                        el.clear()
            if fed >= limit:
                break
            chunk = stream.read(min(64 * 1024, limit - fed))
    except etree.XMLSyntaxError as exc:
        raise _syntax_error(exc, name, None, root_name) from exc
    info["contains_only_changes"] = any(flags) if flags else None
    info["sections"] = sections
    info["kinds"] = sorted(kinds)
    return info


def iter_entity(source: Source, entity: str, **kwargs: Any) -> Iterator[Record]:
    """Yield only the records of one entity from a file (convenience over :func:`parse_file`).

    Args:
        source: A path or a binary file object.
        entity: One of :data:`ENTITIES`.
        **kwargs: Passed to :func:`parse_file`.

    Raises:
        ValueError: ``entity`` is not a known entity name.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown CommerceML entity {entity!r}; expected one of {', '.join(ENTITIES)}")
    for name, record in parse_file(source, **kwargs):
        if name == entity:
            yield record


__all__ = [
    "BRAND_PROPERTY_NAMES",
    "ENTITIES",
    "PROLOG_LIMIT",
    "ACCEPTED_ROOTS",
    "CommerceMLContentError",
    "CommerceMLError",
    "CommerceMLSyntaxError",
    "CommerceMLUnsafeXMLError",
    "PropertyDictionary",
    "Record",
    "check_prolog",
    "check_root",
    "declared_encoding",
    "iter_entity",
    "parse_file",
    "read_header",
    "split_offer_id",
]
