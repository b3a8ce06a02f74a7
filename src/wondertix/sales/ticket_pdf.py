"""Tickets as a PDF, one page per ticket (fpdf2, pure Python).

Two layouts of the same ticket face (`ticket_files.TicketFace`):

* ``page`` — the patron's: a Letter or A4 page per ticket (TICKET_PAGE_SIZE), printed at home
  or shown on a phone, the QR large in the middle;
* ``stock`` — the box office's: one ticket per page of ticket stock (TICKET_STOCK_SIZE_IN,
  landscape), QR on the left, the details beside it, for a ticket printer.

The QR is drawn as vector squares from the `qrcode` library's module matrix, so it is sharp at
any zoom and needs no image library. It holds only the ticket code, exactly like the QR on the
order page, so the door accepts both. Text uses the PDF core fonts (Helvetica, Courier) in the
Windows-1252 encoding, which covers English and Western European text with its dashes and
quotes; any other character is shown as its closest plain letter, or "?".
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import qrcode
from django.conf import settings
from fpdf import FPDF

from wondertix.sales.ticket_files import PT_PER_IN, TicketFace, page_size, stock_size

ENCODING = "windows-1252"
LAYOUTS = ("page", "stock")
# Letters with a stroke have no decomposition to a plain letter; the usual stand-ins.
_STROKED = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "ı": "i"})


def printable(text: str) -> str:
    """`text` in what the core fonts can show: itself where Windows-1252 has it, else the
    closest plain letter (é stays é, ā becomes a), else "?"."""
    out = []
    for ch in text.translate(_STROKED):
        try:
            ch.encode(ENCODING)
            out.append(ch)
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", ch).encode(ENCODING, "ignore").decode(ENCODING)
            out.append(plain or "?")
    return "".join(out)


def draw_qr(pdf: FPDF, code: str, x: float, y: float, size: float) -> None:
    """The code's QR in the `size`-point square at (x, y), its quiet zone (4 blank modules
    each side, which scanners need) included in that square."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(code)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for row_index, row in enumerate(matrix):
        col = 0
        while col < len(row):  # one rectangle per run of dark modules: a smaller file
            if not row[col]:
                col += 1
                continue
            start = col
            while col < len(row) and row[col]:
                col += 1
            pdf.rect(x + start * module, y + row_index * module, (col - start) * module, module, style="F")


def _new_pdf(size: tuple[float, float], title: str) -> FPDF:
    pdf = FPDF(unit="pt", format=size)
    pdf.core_fonts_encoding = ENCODING
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.set_title(printable(title))
    pdf.set_author(printable(settings.THEATER_NAME))
    pdf.set_creator("WonderTix")
    return pdf


def _line(pdf: FPDF, x: float, width: float, text: str, *, size: float, style: str = "", font: str = "helvetica", leading: float = 1.25) -> None:
    """A paragraph at x, wrapped to `width`, starting at the current y; y moves below it."""
    pdf.set_font(font, style, size)
    pdf.set_x(x)
    text = printable(text)
    if pdf.get_string_width(text) <= width - 2 * pdf.c_margin:  # one line: no line breaking (the slow part)
        pdf.cell(width, size * leading, text, new_x="LEFT", new_y="NEXT")
    else:
        pdf.multi_cell(width, size * leading, text, new_x="LEFT", new_y="NEXT")


def _test_mark(pdf: FPDF, face: TicketFace, x: float, width: float, size: float) -> None:
    if face.test_mark:
        pdf.set_text_color(180, 0, 0)
        _line(pdf, x, width, face.test_mark, size=size, style="B")
        pdf.set_text_color(0, 0, 0)


def _page_ticket(pdf: FPDF, face: TicketFace, size: tuple[float, float]) -> None:
    width, height = size
    margin = 54.0
    text_w = width - 2 * margin
    pdf.add_page()
    pdf.set_y(margin)
    _test_mark(pdf, face, margin, text_w, 20)
    pdf.set_text_color(90, 90, 90)
    _line(pdf, margin, text_w, settings.THEATER_NAME, size=11)
    pdf.set_text_color(0, 0, 0)
    _line(pdf, margin, text_w, face.show, size=24, style="B")
    _line(pdf, margin, text_w, face.when, size=14)
    _line(pdf, margin, text_w, ", ".join(p for p in (face.venue, face.address) if p), size=12)
    qr_size = 288.0  # 4 inches with its quiet zone: a 3-inch code, scans from a phone at arm's length
    qr_y = pdf.get_y() + 6
    draw_qr(pdf, face.code, (width - qr_size) / 2, qr_y, qr_size)
    pdf.set_y(qr_y + qr_size - 24)
    pdf.set_font("courier", "B", 16)
    pdf.cell(width, 20, _spaced(face.code), align="C", new_x="LEFT", new_y="NEXT")
    pdf.set_y(pdf.get_y() + 18)
    for label, value in _details(face):
        _line(pdf, margin, text_w, f"{label}: {value}", size=12)
    if face.performance_note:
        _line(pdf, margin, text_w, face.performance_note, size=12, style="I")
    for note in face.accessibility:
        _line(pdf, margin, text_w, note, size=12)
    pdf.set_y(height - margin - 30)
    pdf.set_text_color(90, 90, 90)
    _line(pdf, margin, text_w, "Show this QR code at the door, printed or on your phone. Each ticket admits one person once.", size=10)
    pdf.set_text_color(0, 0, 0)


def _stock_ticket(pdf: FPDF, face: TicketFace, size: tuple[float, float]) -> None:
    width, height = size
    margin = 0.15 * PT_PER_IN
    qr_size = min(height - 12, 2.8 * PT_PER_IN)  # the quiet zone is the margin on this side
    pdf.add_page()
    draw_qr(pdf, face.code, 0, 0, qr_size)
    pdf.set_xy(0, qr_size - 14)
    pdf.set_font("courier", "B", 8)
    pdf.cell(qr_size, 12, face.code, align="C")
    x = qr_size
    text_w = width - x - margin
    pdf.set_y(margin)
    _test_mark(pdf, face, x, text_w, 12)
    _line(pdf, x, text_w, face.show, size=16, style="B", leading=1.15)
    _line(pdf, x, text_w, face.when, size=11)
    _line(pdf, x, text_w, ", ".join(p for p in (face.venue, face.address) if p), size=9)
    pdf.set_y(pdf.get_y() + 4)
    _line(pdf, x, text_w, " · ".join(f"{label}: {value}" for label, value in _details(face)), size=9)
    for note in ([face.performance_note] if face.performance_note else []) + face.accessibility:
        _line(pdf, x, text_w, note, size=8)


def _details(face: TicketFace) -> list[tuple[str, str]]:
    return [
        *([("Seat", face.seat)] if face.seat else []),
        ("Ticket", f"{face.price_type}, {face.price} ({face.number} of {face.of})"),
        ("Order", face.order_reference),
        ("Name", face.buyer_name),
    ]


def _spaced(code: str) -> str:
    """ABCD EFGH … : easier to read out than 16 letters in a row (the door ignores spaces)."""
    return " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def render(faces: Iterable[TicketFace], *, title: str, layout: str = "page") -> bytes:
    """The PDF: one page per ticket face, in the given layout."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}")
    size = page_size() if layout == "page" else stock_size()
    pdf = _new_pdf(size, title)
    draw = _page_ticket if layout == "page" else _stock_ticket
    for face in faces:
        draw(pdf, face, size)
    return bytes(pdf.output())
