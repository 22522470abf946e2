"""Page 1 of a document as a PNG for the body of an e-mail, and the owner's name drawn on it.

A sheet's page is rasterised once (pypdfium2) and turned into a palette image; each person's PNG
is that image with their lines drawn by Pillow, in the same DejaVu font and place as on the PDF.
Only the band holding the name is compressed again for each person: the rest of the image is a
deflate stream made once, after a full flush (RFC 1951 blocks do not reach back across it).
"""

from __future__ import annotations

import functools
import struct
import threading
import zlib
from typing import TYPE_CHECKING

from hpmail.documents.print_html import FONT_BOLD, MARGIN, PageGeometry, RenderError

if TYPE_CHECKING:
    from hpmail.documents.stamp import Stamp

PNG_WIDTH = 1240  # pixels: legible in a mail client without zooming
PNG_COLOURS = 96  # a palette: pastel blocks and antialiased text need no more
COMPRESSION = 6

_pdfium_lock = threading.Lock()  # pypdfium2 is not thread-safe


def first_page_image(pdf: bytes):
    """Page 1 as a Pillow RGB image, ``PNG_WIDTH`` pixels wide."""
    import pypdfium2

    try:
        with _pdfium_lock:
            document = pypdfium2.PdfDocument(pdf)
            try:
                page = document[0]
                image = page.render(scale=PNG_WIDTH / page.get_width()).to_pil().convert("RGB")
                page.close()
            finally:
                document.close()
    except Exception as error:  # pypdfium2 raises its own kinds; each means no picture
        raise RenderError(f"pypdfium2: {error}") from error
    return image


def _palette_image(rgb):
    from PIL import Image

    return rgb.quantize(PNG_COLOURS, method=Image.Quantize.FASTOCTREE)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _scanlines(image) -> bytes:
    """Rows of a palette image as PNG scanlines (filter type 0: palettes gain nothing more)."""
    width = image.width
    raw = image.tobytes()
    return b"".join(b"\x00" + raw[at : at + width] for at in range(0, len(raw), width))


def render_png(pdf: bytes) -> bytes:
    """Return page 1 of ``pdf`` as a palette PNG ``PNG_WIDTH`` pixels wide."""
    return PngBase.of_pdf(pdf).png()


@functools.lru_cache(maxsize=16)
def _pillow_font(size: float):
    from PIL import ImageFont

    return ImageFont.truetype(str(FONT_BOLD), size)


class PngBase:
    """Page 1 drawn once: the RGB image to draw names on, its palette, the rest compressed."""

    def __init__(self, rgb, band: int) -> None:
        self.rgb = rgb
        self.palette = _palette_image(rgb)
        self.band = band  # rows from the top that change from person to person
        bottom = self.palette.crop((0, band, rgb.width, rgb.height))
        rest = zlib.compressobj(COMPRESSION, zlib.DEFLATED, -15)
        self.rest_raw = _scanlines(bottom)
        self.rest = rest.compress(self.rest_raw) + rest.flush(zlib.Z_FINISH)
        colours = self.palette.getpalette()[: 3 * len(self.palette.getcolors(256) or [])]
        self.head = b"\x89PNG\r\n\x1a\n" + _chunk(
            b"IHDR", struct.pack(">IIBBBBB", rgb.width, rgb.height, 8, 3, 0, 0, 0)
        )
        self.head += _chunk(b"PLTE", bytes(colours or [0, 0, 0]))
        self.geometry: PageGeometry | None = None
        self.box = (0, 0, 0, 0)

    @classmethod
    def of_pdf(cls, pdf: bytes) -> PngBase:
        return cls(first_page_image(pdf), 0)

    @classmethod
    def of_sheet(cls, pdf: bytes, geometry: PageGeometry) -> PngBase:
        box = cls.name_box_pixels(geometry)
        base = cls(first_page_image(pdf), box[3])
        base.geometry, base.box = geometry, box
        return base

    @staticmethod
    def name_box_pixels(geometry: PageGeometry) -> tuple[int, int, int, int]:
        """The room of the owner's lines (``Stamp.baselines``) in the PNG, with a little air."""
        left, _top, _width = geometry.name_box
        pixels_per_point = PNG_WIDTH / geometry.width
        return tuple(
            round(v * pixels_per_point)
            for v in (left - 2, MARGIN - 4, geometry.width - MARGIN + 2, geometry.content_top - 2)
        )

    def png(self, band=None) -> bytes:
        """The PNG with ``band`` (a palette image of the top rows) over the shared image."""
        if band is None:
            band = self.palette.crop((0, 0, self.rgb.width, self.band))
        top_raw = _scanlines(band) if self.band else b""
        top = zlib.compressobj(COMPRESSION, zlib.DEFLATED, -15)
        deflated = top.compress(top_raw) + top.flush(zlib.Z_FULL_FLUSH) + self.rest
        checksum = zlib.adler32(self.rest_raw, zlib.adler32(top_raw))
        data = b"\x78\x9c" + deflated + struct.pack(">I", checksum)
        return self.head + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")

    def stamped(self, stamp: Stamp) -> bytes:
        """The PNG with the owner's lines drawn where the PDF has them."""
        from PIL import ImageDraw

        assert self.geometry is not None
        crop = self.rgb.crop(self.box)
        draw = ImageDraw.Draw(crop)
        scale = PNG_WIDTH / self.geometry.width
        x0, y0 = self.box[0], self.box[1]
        right = (self.geometry.width - MARGIN) * scale - x0
        name_baseline, detail_baseline = stamp.baselines()
        name_font = _pillow_font(stamp.name_size * scale)
        draw.text(
            (right, name_baseline * scale - y0), stamp.name, font=name_font, fill=0, anchor="rs"
        )
        if stamp.detail:
            detail_font = _pillow_font(stamp.detail_size * scale)
            draw.text(
                (right, detail_baseline * scale - y0),
                stamp.detail,
                font=detail_font,
                fill=(77, 77, 77),
                anchor="rs",
            )
        band = self.palette.crop((0, 0, self.rgb.width, self.band))
        band.paste(crop.quantize(palette=self.palette), (x0, y0))
        return self.png(band)
