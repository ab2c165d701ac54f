"""Text extraction from RFC 5322 messages: subject, text/HTML parts, CSV, PDF, DOCX."""

from __future__ import annotations

import io
import zipfile
from email.message import EmailMessage

from client.policy.extract import html_to_text, message_text
from client.policy.scan import scan_text

SSN = "123-45-6789"


def _pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in its content stream (hand-built, with an xref)."""
    stream = f"BT /F1 12 Tf 72 712 Td ({text}) Tj ET".encode()
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    )
    return out.getvalue()


def _docx(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(
            "word/document.xml",
            '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
            f"<w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>",
        )
    return buf.getvalue()


def _message() -> EmailMessage:
    m = EmailMessage()
    m["From"] = "a@clinic.example"
    m["To"] = "b@partner.example"
    m["Subject"] = "Referral"
    m.set_content("Hello, see attached.")
    return m


def _types(raw: bytes) -> tuple[set[str], str]:
    st = message_text(raw)
    return {st.text[f.start : f.end] for f in scan_text(st.text)}, st.text


def test_subject_is_scanned() -> None:
    m = _message()
    del m["Subject"]
    m["Subject"] = f"SSN {SSN}"
    found, text = _types(m.as_bytes())
    assert SSN in found and text.startswith("SSN ")


def test_html_part_tags_stripped() -> None:
    m = _message()
    m.add_alternative(
        f"<p>Patient <b>SSN</b> <span>{SSN}</span></p><script>x</script>", subtype="html"
    )
    found, text = _types(m.as_bytes())
    assert SSN in found and "<b>" not in text and "x</script>" not in text


def test_csv_attachment() -> None:
    m = _message()
    m.add_attachment(
        f"name,ssn\nDoe,{SSN}\n".encode(), maintype="text", subtype="csv", filename="p.csv"
    )
    found, _ = _types(m.as_bytes())
    assert SSN in found


def test_pdf_attachment() -> None:
    m = _message()
    m.add_attachment(_pdf(f"SSN {SSN}"), maintype="application", subtype="pdf", filename="r.pdf")
    st = message_text(m.as_bytes())
    assert not st.unreadable
    assert SSN in {st.text[f.start : f.end] for f in scan_text(st.text)}


def test_docx_attachment() -> None:
    m = _message()
    m.add_attachment(
        _docx(f"Social security number {SSN}"),
        maintype="application",
        subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
        filename="letter.docx",
    )
    found, _ = _types(m.as_bytes())
    assert SSN in found


def test_broken_attachments_are_listed_unreadable() -> None:
    m = _message()
    m.add_attachment(b"%PDF-1.4 garbage", maintype="application", subtype="pdf", filename="bad.pdf")
    m.add_attachment(b"PK\x03\x04junk", maintype="application", subtype="zip", filename="x.zip")
    st = message_text(m.as_bytes())
    assert set(st.unreadable) == {"bad.pdf", "x.zip"}


def test_html_to_text_entities() -> None:
    assert html_to_text("a&nbsp;<br>b &amp; c").replace("\xa0", " ") == "a \nb & c"


def test_parts_we_do_not_read_are_not_decoded() -> None:
    """An image or a binary scan is skipped before its body is decoded (the composer scans
    on every pause in typing; decoding a 25 MB attachment each time held the GIL): damaged
    base64 in an image goes unnoticed, the same damage in a text part is reported."""
    m = _message()
    m.add_attachment(b"\x89PNG....", maintype="image", subtype="png", filename="x-ray.png")
    m.add_attachment(b"DICM....", maintype="application", subtype="dicom", filename="ct.dcm")
    m.add_attachment(f"SSN {SSN}".encode(), maintype="text", subtype="plain", filename="n.txt")
    raw = m.as_bytes()
    damaged = raw
    for name in (b"x-ray.png", b"ct.dcm", b"n.txt"):
        head = damaged.index(name)
        body = damaged.index(b"\n\n", head) + 2
        damaged = damaged[:body] + b"A=B=C\n" + damaged[body:]  # '=' before the end
    st = message_text(damaged)
    assert set(st.unreadable) == {"ct.dcm", "n.txt"}  # the scan is not read, the note failed
    assert set(message_text(raw).unreadable) == {"ct.dcm"}
    assert SSN in message_text(raw).text
