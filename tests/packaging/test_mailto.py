"""sealmail-gui as the desktop's mailto: handler: the URL becomes composer fields."""

from __future__ import annotations

from ui.app import _parser, parse_mailto


def test_addresses_subject_body_and_cc() -> None:
    got = parse_mailto(
        "mailto:a@example.org,b@example.org?cc=c@example.org&subject=Lab%20results"
        "&body=Dear%20Dr%20X%2C%0D%0Asee%20below"
    )
    assert got == {
        "to": "a@example.org,b@example.org",
        "cc": "c@example.org",
        "subject": "Lab results",
        "body": "Dear Dr X,\nsee below",
    }


def test_to_in_query_and_case_insensitive_scheme_and_keys() -> None:
    got = parse_mailto("MAILTO:?To=x@example.org&SUBJECT=Hi&to=y@example.org")
    assert got["to"] == "x@example.org, y@example.org"
    assert got["subject"] == "Hi"


def test_plus_is_not_a_space_and_attachments_are_ignored() -> None:
    got = parse_mailto("mailto:a+tag@example.org?attach=/etc/passwd&attachment=~/.ssh/id_rsa")
    assert got == {"to": "a+tag@example.org", "cc": "", "subject": "", "body": ""}


def test_the_gui_accepts_a_mailto_argument() -> None:
    args = _parser().parse_args(["mailto:a@example.org"])
    assert args.file == "mailto:a@example.org"


def test_compose_fills_the_composer_fields() -> None:
    from ui.app import _compose

    class Edit:
        def __init__(self) -> None:
            self.text = ""

        def setText(self, text: str) -> None:
            self.text = text

        setPlainText = setText

    class Composer:
        def __init__(self) -> None:
            self.to, self.cc, self.subject, self.body = Edit(), Edit(), Edit(), Edit()

    class Window:
        composer = Composer()

        def new_message(self) -> Composer:
            return self.composer

    window = Window()
    _compose(window, parse_mailto("mailto:a@example.org?subject=Hi&body=x%0Ay&cc=b@example.org"))
    c = window.composer
    assert (c.to.text, c.cc.text, c.subject.text, c.body.text) == (
        "a@example.org", "b@example.org", "Hi", "x\ny",
    )  # fmt: skip


def test_file_urls_from_the_desktop_become_paths() -> None:
    from ui.app import file_argument

    assert file_argument("file:///home/bob/Lab%20results.p7m") == "/home/bob/Lab results.p7m"
    assert file_argument("file://localhost/tmp/x.pgp") == "/tmp/x.pgp"
    assert file_argument("/tmp/plain.asc") == "/tmp/plain.asc"
    assert file_argument("file://server/share/x.p7m") == "file://server/share/x.p7m"
