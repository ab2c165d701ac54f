"""A Hypothesis strategy for arbitrary MIME trees (shared by the renderer, streaming
protect and streaming open property tests): text in 8bit, base64 or quoted-printable,
HTML, files with any (non-ASCII) name, inline images, forwarded messages, multipart
nesting up to four levels."""

from __future__ import annotations

from email.message import EmailMessage

from hypothesis import strategies as st

__all__ = ["trees"]

_names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> EmailMessage:
    msg = EmailMessage()
    kind = draw(
        st.sampled_from(
            ["text", "html", "file", "image", "multi", "rfc822"][: 6 if depth < 3 else 4]
        )
    )
    if kind == "text":
        cte = draw(st.sampled_from(["8bit", "base64", "quoted-printable"]))
        msg.set_content(draw(_texts), cte=cte)
    elif kind == "html":
        msg.set_content(f"<p>{draw(_texts)}</p>", subtype="html")
    elif kind == "file":
        msg.set_content(
            draw(st.binary(max_size=300)), maintype="application", subtype="octet-stream",
            filename=draw(_names), disposition=draw(st.sampled_from(["attachment", "inline"])),
        )  # fmt: skip
    elif kind == "image":
        msg.set_content(
            draw(st.binary(max_size=64)), maintype="image", subtype="png", cid=f"<i{depth}@x>"
        )
        del msg["Content-Disposition"]
    elif kind == "rfc822":
        inner = draw(trees(depth + 1))
        inner["Subject"] = "fwd"
        msg.set_content(inner)
    else:
        msg.make_mixed()
        for _ in range(draw(st.integers(1, 4))):
            msg.attach(draw(trees(depth + 1)))
    return msg
