"""The owner's name stamped on shared pages: an incremental update appended to the PDF's bytes.

A sheet's pages (drawn once by xhtml2pdf) are read once; for each person, a few objects are
appended after them: the name as a form XObject drawn over every page, the font it needs, the
page dictionaries pointing to it, and a new cross-reference section (PDF 1.7, 7.5.6). The shared
pages are never decoded nor written again. The names of a chunk of people are drawn by reportlab
in one document, so that they share one font subset, built once.
"""

from __future__ import annotations

import io
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    StreamObject,
)

from hpmail.documents.print_html import FONT_BOLD, MARGIN, PAPER_SIZES, PageGeometry

STAMP = "/HpmailOwner"
BOLD = "hpmail-DejaVuSans-Bold"
NAME_SIZE = 13.0  # points on A4 landscape, in proportion on other papers
MIN_NAME_SIZE = 9.0
DETAIL_SIZE = 8.0
LANDSCAPE_A4_WIDTH = PAPER_SIZES["A4"][1]


@dataclass(frozen=True)
class Stamp:
    """The owner's lines as they are stamped, already fitted to the space they have."""

    name: str
    name_size: float
    detail: str
    detail_size: float

    def baselines(self) -> tuple[float, float]:
        """The name's and the detail's baselines, in points from the top of the page."""
        name_baseline = MARGIN + self.name_size
        return name_baseline, name_baseline + self.detail_size * 1.6


def serialised(number: int, obj: PdfObject, stream_data: bytes | None = None) -> bytes:
    out = io.BytesIO()
    out.write(b"%d 0 obj\n" % number)
    if stream_data is None:
        obj.write_to_stream(out)
    else:
        assert isinstance(obj, DictionaryObject)
        obj[NameObject("/Length")] = NumberObject(len(stream_data))
        DictionaryObject.write_to_stream(obj, out)
        out.write(b"\nstream\n" + stream_data + b"\nendstream")
    out.write(b"\nendobj\n")
    return out.getvalue()


def _stream(data: bytes, entries: dict | None = None) -> tuple[DictionaryObject, bytes]:
    dictionary = DictionaryObject(entries or {})
    dictionary[NameObject("/Filter")] = NameObject("/FlateDecode")
    return dictionary, zlib.compress(data)


class SheetPages:
    """A sheet's PDF read once, ready to receive each person's stamp as an incremental update."""

    def __init__(self, pdf: bytes, geometry: PageGeometry) -> None:
        reader = PdfReader(io.BytesIO(pdf))
        self.pdf = pdf if pdf.endswith(b"\n") else pdf + b"\n"
        self.geometry = geometry
        self.previous = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
        self.trailer = DictionaryObject(
            {
                NameObject(key): reader.trailer.raw_get(key)
                for key in ("/Root", "/Info", "/ID")
                if key in reader.trailer
            }
        )
        size = int(reader.trailer["/Size"])
        begin, end, self.form = size, size + 1, size + 2
        self.first_free = size + 3
        objects = [
            serialised(begin, *_stream(b"q\n")),
            serialised(end, *_stream(f"\nQ q {STAMP} Do Q\n".encode())),
        ]
        form_ref = IndirectObject(self.form, 0, None)
        for page in reader.pages:
            copy = DictionaryObject(page)
            resources = DictionaryObject(page["/Resources"].get_object())
            xobjects = DictionaryObject(resources.get("/XObject", DictionaryObject()).get_object())
            xobjects[NameObject(STAMP)] = form_ref
            resources[NameObject("/XObject")] = xobjects
            copy[NameObject("/Resources")] = resources
            contents = page.raw_get("/Contents")
            old = contents.get_object() if isinstance(contents.get_object(), list) else [contents]
            copy[NameObject("/Contents")] = ArrayObject(
                [IndirectObject(begin, 0, None), *old, IndirectObject(end, 0, None)]
            )
            objects.append(serialised(page.indirect_reference.idnum, copy))
        self.objects = objects

    def stamped(self, person_objects: Sequence[tuple[int, bytes]]) -> bytes:
        """Return the sheet with ``person_objects`` (number, serialised) appended."""
        out = io.BytesIO()
        out.write(self.pdf)
        offsets: dict[int, int] = {}
        for chunk in self.objects:
            number = int(chunk.split(b" ", 1)[0])
            offsets[number] = out.tell()
            out.write(chunk)
        for number, chunk in person_objects:
            offsets[number] = out.tell()
            out.write(chunk)
        xref = out.tell()
        out.write(b"xref\n")
        numbers = sorted(offsets)
        start = 0
        while start < len(numbers):  # one subsection per run of consecutive numbers
            stop = start
            while stop + 1 < len(numbers) and numbers[stop + 1] == numbers[stop] + 1:
                stop += 1
            out.write(b"%d %d\n" % (numbers[start], stop - start + 1))
            for number in numbers[start : stop + 1]:
                out.write(b"%010d 00000 n \n" % offsets[number])
            start = stop + 1
        trailer = DictionaryObject(self.trailer)
        trailer[NameObject("/Size")] = NumberObject(max(numbers[-1] + 1, self.first_free))
        trailer[NameObject("/Prev")] = NumberObject(self.previous)
        out.write(b"trailer\n")
        trailer.write_to_stream(out)
        out.write(b"\nstartxref\n%d\n%%%%EOF\n" % xref)
        return out.getvalue()


def _owner_pages(stamps: Sequence[Stamp], geometry: PageGeometry) -> bytes:
    """One page per stamp, the names drawn where the sheet left them room."""
    from reportlab.pdfgen.canvas import Canvas

    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(geometry.width, geometry.height), pageCompression=1)
    right = geometry.width - MARGIN
    for stamp in stamps:
        name_baseline, detail_baseline = stamp.baselines()
        canvas.setFont(BOLD, stamp.name_size)
        canvas.drawRightString(right, geometry.height - name_baseline, stamp.name)
        if stamp.detail:
            # One font for both lines: each embedded subset weighs about 18 KB.
            canvas.setFont(BOLD, stamp.detail_size)
            canvas.setFillGray(0.3)
            canvas.drawRightString(right, geometry.height - detail_baseline, stamp.detail)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


class _Renumbered:
    """Copies objects of the names' document under new numbers, after the sheet's own."""

    def __init__(self, reader: PdfReader, first: int) -> None:
        self.reader = reader
        self.numbers: dict[int, int] = {}
        self.next = first
        self.pending: list[int] = []

    def copy(self, obj: PdfObject) -> PdfObject:
        if isinstance(obj, IndirectObject):
            if obj.idnum not in self.numbers:
                self.numbers[obj.idnum] = self.next
                self.next += 1
                self.pending.append(obj.idnum)
            return IndirectObject(self.numbers[obj.idnum], 0, None)
        if isinstance(obj, DictionaryObject):
            copy = DictionaryObject({key: self.copy(value) for key, value in obj.items()})
            for key in ("/BaseFont", "/FontName"):
                # reportlab tags every subset AAAAAA, xhtml2pdf's on the sheet too: one file's
                # subsets must have different tags (PDF 1.7, 9.6.4).
                if key in copy and str(copy[key]).startswith("/AAAAAA+"):
                    copy[NameObject(key)] = NameObject("/HPMAIL+" + str(copy[key])[8:])
            return copy
        if isinstance(obj, ArrayObject):
            return ArrayObject(self.copy(value) for value in obj)
        return obj

    def serialised(self) -> list[tuple[int, bytes]]:
        """Every object reached by ``copy`` so far (and those they reach), serialised."""
        done = []
        while self.pending:
            old = self.pending.pop()
            obj = self.reader.get_object(old)
            copy = self.copy(obj)
            # pypdf gives no public access to a stream's bytes as stored (still compressed).
            data = obj._data if isinstance(obj, StreamObject) else None
            done.append((self.numbers[old], serialised(self.numbers[old], copy, data)))
        return done


def owner_objects(stamps: Sequence[Stamp], sheet: SheetPages) -> list[list[tuple[int, bytes]]]:
    """For each stamp, the objects to append to the sheet: its form and the shared font."""
    reader = PdfReader(io.BytesIO(_owner_pages(stamps, sheet.geometry)))
    renumbered = _Renumbered(reader, sheet.first_free)
    forms = []
    bbox = ArrayObject(
        [FloatObject(0), FloatObject(0), FloatObject(sheet.geometry.width)]
        + [FloatObject(sheet.geometry.height)]
    )
    for page in reader.pages:
        entries = {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Form"),
            NameObject("/BBox"): bbox,
            NameObject("/Resources"): renumbered.copy(page["/Resources"].get_object()),
        }
        forms.append(serialised(sheet.form, *_stream(page.get_contents().get_data(), entries)))
    shared = renumbered.serialised()
    return [[(sheet.form, form), *shared] for form in forms]


# Fitting the lines to their room, with the font's own metrics.

_fonts_ready = False
_font_lock = threading.Lock()


def register_fonts() -> None:
    """Make the stamp's font known to reportlab (once in each process)."""
    global _fonts_ready
    with _font_lock:
        if _fonts_ready:
            return
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        pdfmetrics.registerFont(TTFont(BOLD, str(FONT_BOLD)))
        _fonts_ready = True


def _fit(text: str, size: float, width: float, smallest: float) -> tuple[str, float]:
    """Shrink ``text`` down to ``smallest`` points to fit ``width``, then cut it (ellipsis)."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    text = " ".join(text.split())
    while size > smallest and stringWidth(text, BOLD, size) > width:
        size = max(smallest, size - 0.5)
    if stringWidth(text, BOLD, size) <= width:
        return text, size
    low, high = 0, len(text)
    while low < high:  # the longest beginning that fits with its ellipsis
        middle = (low + high + 1) // 2
        if stringWidth(text[:middle].rstrip() + "…", BOLD, size) <= width:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + "…", size


def fitted_stamp(name: str, detail: str, geometry: PageGeometry) -> Stamp:
    """The owner's name and detail line, sized and cut for the room right of the letterhead."""
    register_fonts()
    scale = geometry.width / LANDSCAPE_A4_WIDTH
    _left, _top, width = geometry.name_box
    fitted_name, name_size = _fit(name, NAME_SIZE * scale, width, MIN_NAME_SIZE * scale)
    fitted_detail, detail_size = _fit(detail, DETAIL_SIZE * scale, width, DETAIL_SIZE * scale)
    return Stamp(fitted_name, name_size, fitted_detail, detail_size)
