"""Many PDFs as one, to print: what documents share is written once.

A stamped document is its sheet's bytes followed by its own objects (``stamp``). Here the objects
of each distinct sheet are copied once, under new numbers, and each document adds only its own
objects and pages: 2,000 timetables of 73 grids make a PDF of 73 grids and 2,000 names, written
in seconds. Any other PDF is copied whole, as its own sheet.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    StreamObject,
)

CATALOG, PAGES = 1, 2
_END = re.compile(rb"startxref\s+\d+\s+%%EOF")


def _body(obj: PdfObject, stream_data: bytes | None = None) -> bytes:
    """An object as written between ``n 0 obj`` and ``endobj``."""
    out = io.BytesIO()
    if stream_data is None:
        obj.write_to_stream(out)
    else:
        obj[NameObject("/Length")] = NumberObject(len(stream_data))
        DictionaryObject.write_to_stream(obj, out)
        out.write(b"\nstream\n" + stream_data + b"\nendstream")
    return out.getvalue()


class _Bundle:
    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        self.offsets: dict[int, int] = {}
        self.next = PAGES + 1
        self.sheets: dict[bytes, dict[int, int]] = {}  # sheet hash -> its objects' new numbers
        self.kids: list[IndirectObject] = []
        self.written: dict[bytes, int] = {}  # an object's serialised content -> its number

    def _write(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.out.tell()
        self.out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    def add(self, pdf: bytes) -> None:
        reader = PdfReader(io.BytesIO(pdf))
        # The sheet ends with its first end-of-file marker (a stamp is appended after it).
        first_end = _END.search(pdf)
        sheet_length = first_end.end() if first_end else len(pdf)
        shared = self.sheets.setdefault(hashlib.sha256(pdf[:sheet_length]).digest(), {})
        own: dict[int, int] = {}
        offsets = reader.xref.get(0, {})
        visiting: set[int] = set()

        def number_of(old: int) -> int:
            offset = offsets.get(old)
            table = shared if offset is not None and offset < sheet_length else own
            if old in table:
                return table[old]
            if old in visiting:  # a cycle: this object gets its number before its content
                table[old], self.next = self.next, self.next + 1
                return table[old]
            visiting.add(old)
            obj = reader.get_object(old)
            # pypdf gives no public access to a stream's bytes as stored (still compressed).
            data = obj._data if isinstance(obj, StreamObject) else None
            body = _body(renumbered(obj), data)
            visiting.discard(old)
            if old not in table:
                # The same font subset stamped on many documents is written once.
                found = self.written.get(body)
                if found is not None:
                    table[old] = found
                    return found
                table[old], self.next = self.next, self.next + 1
                self.written[body] = table[old]
            self._write(table[old], body)
            return table[old]

        def renumbered(obj: PdfObject) -> PdfObject:
            if isinstance(obj, IndirectObject):
                return IndirectObject(number_of(obj.idnum), 0, None)
            if isinstance(obj, DictionaryObject):
                return DictionaryObject({k: renumbered(v) for k, v in obj.items()})
            if isinstance(obj, ArrayObject):
                return ArrayObject(renumbered(v) for v in obj)
            return obj

        for page in reader.pages:
            entries = {k: v for k, v in page.items() if k != "/Parent"}
            copy = renumbered(DictionaryObject(entries))
            copy[NameObject("/Parent")] = IndirectObject(PAGES, 0, None)
            number, self.next = self.next, self.next + 1
            self._write(number, _body(copy))
            self.kids.append(IndirectObject(number, 0, None))

    def finish(self) -> bytes:
        catalog = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Catalog"),
                NameObject("/Pages"): IndirectObject(PAGES, 0, None),
            }
        )
        pages = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Pages"),
                NameObject("/Kids"): ArrayObject(self.kids),
                NameObject("/Count"): NumberObject(len(self.kids)),
            }
        )
        self._write(CATALOG, _body(catalog))
        self._write(PAGES, _body(pages))
        xref = self.out.tell()
        size = self.next
        self.out.write(b"xref\n0 %d\n0000000000 65535 f \n" % size)
        for number in range(1, size):
            if number in self.offsets:
                self.out.write(b"%010d 00000 n \n" % self.offsets[number])
            else:
                self.out.write(b"0000000000 65535 f \n")
        trailer = DictionaryObject(
            {
                NameObject("/Size"): NumberObject(size),
                NameObject("/Root"): IndirectObject(CATALOG, 0, None),
            }
        )
        self.out.write(b"trailer\n")
        trailer.write_to_stream(self.out)
        self.out.write(b"\nstartxref\n%d\n%%%%EOF\n" % xref)
        return self.out.getvalue()


def bundled(pdfs: Iterable[bytes]) -> bytes:
    """Return one PDF holding the pages of ``pdfs`` in order, their shared sheets once."""
    bundle = _Bundle()
    for pdf in pdfs:
        bundle.add(pdf)
    return bundle.finish()
