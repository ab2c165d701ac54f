"""Generate the attack table of docs/ATTACKS.md from tests/vectors/expectations.py.

    python -m tests.vectors.make_attack_table            # print the table (Markdown)
    python -m tests.vectors.make_attack_table --write    # replace it in docs/ATTACKS.md
    python -m tests.vectors.make_attack_table --check    # exit 1 if docs/ATTACKS.md is stale

Every row comes from an expectation that tests/unit/test_corpus_messages.py asserts, so the
table is exactly as true as that test run. The class of each case is derived from its path
in ../shared/corpus (MANIFEST sections 10a/10b and the Thunderbird Efail vectors).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from tests.vectors.expectations import VECTORS
from tests.vectors.vector import Vector

DOC = Path(__file__).resolve().parents[2] / "docs" / "ATTACKS.md"
BEGIN = "<!-- BEGIN GENERATED: python -m tests.vectors.make_attack_table --write -->"
END = "<!-- END GENERATED -->"

# (regex on the corpus path, family, class) -- first match wins
CLASSES: list[tuple[str, str, str]] = [
    (r"rc-openpgp-nomdc", "Efail", "CFB gadget (OpenPGP, no MDC)"),
    (r"rc-openpgp-aead", "Efail", "control: AEAD-protected OpenPGP"),
    (r"alice\.env\.mixed", "Efail", "direct exfiltration (S/MIME part mixed with clear parts)"),
    (
        r"covert-content-attacks/.*01-enc/.*/00-original",
        "Covert content",
        "control: victim's original",
    ),
    (
        r"covert-content-attacks/.*01-enc/",
        "Covert content / Efail",
        "decryption oracle: ciphertext wrapped in attacker MIME",
    ),
    (r"covert-content-attacks/.*02-sig/", "Covert content", "signing oracle lure (unsigned HTML)"),
    (r"johnny-you-are-fired/01-cms/valid", "Johnny", "control: valid S/MIME signature"),
    (r"johnny-you-are-fired/01-cms/", "Johnny", "CMS"),
    (r"johnny-you-are-fired/02-gpg/", "Johnny", "GPG"),
    (r"johnny-you-are-fired/03-mime/", "Johnny", "MIME"),
    (r"johnny-you-are-fired/04-id/", "Johnny", "ID"),
    (r"johnny-you-are-fired/05-ui/", "Johnny", "UI"),
    (r"johnny-you-are-fired/assets/valid-signed/", "Johnny", "control: valid signature"),
]


def classify(path: str) -> tuple[str, str] | None:
    for pattern, family, cls in CLASSES:
        if re.search(pattern, path):
            return family, cls
    return None


def outcome(v: Vector) -> str:
    """Sealmail's result for ``v`` in words, from its asserted expectation."""
    if v.xfail:
        return f"NOT HANDLED YET (xfail): {v.xfail}"
    if v.error:
        return f"**refused**: `{v.error}`"
    bits = []
    if v.encrypted:
        bits.append("decrypted (top-level layer only)")
    for status, signer, part in v.sigs:
        where = "whole message" if part == "message" else f"part {part} only"
        bits.append(f"signature `{status}` ({signer or 'unknown signer'}, {where})")
    if v.warn:
        bits.append(f'warning: "…{v.warn}…"')
    if v.absent:
        bits.append("victim plaintext asserted absent from the view")
    if not v.encrypted and not v.sigs:
        bits.append("shown as unprotected (no decryption, no signature claimed)")
    return "; ".join(bits)


def rows() -> list[tuple[str, str, str, Vector]]:
    out = []
    for v in VECTORS:
        c = classify(v.path)
        if c is not None:
            out.append((c[0], c[1], v.path, v))
    return out


def table() -> str:
    lines = [
        "| # | Family | Class | Corpus file (../shared/corpus/) | Sealmail outcome | Why |",
        "|---|---|---|---|---|---|",
    ]
    items = rows()
    for i, (family, cls, path, v) in enumerate(items, start=1):
        why = v.why.replace("|", "\\|")
        lines.append(f"| {i} | {family} | {cls} | `{path}` | {outcome(v)} | {why} |")
    counts = Counter((f, "refused" if v.error else "opened") for f, _, _, v in items)
    summary = ", ".join(f"{f}: {n} {k}" for (f, k), n in sorted(counts.items()))
    good_attacks = [
        p
        for _, cls, p, v in items
        if not cls.startswith("control")
        and any(
            s == "good" and part == "message" and signer == "manager@bigcorporation.de"
            for s, signer, part in v.sigs
        )
    ]
    wrapped = [p for _, cls, p, v in items if "wrapped" in cls or "direct exfiltration" in cls]
    leaked = [
        p
        for _, cls, p, v in items
        if ("wrapped" in cls or "direct exfiltration" in cls) and v.encrypted
    ]
    lines += [
        "",
        f"{len(items)} cases ({summary}). Attack cases shown as a valid whole-message signature "
        f"from manager@bigcorporation.de: **{len(good_attacks)}**. Wrapped-ciphertext cases "
        f"whose ciphertext was decrypted into the view: **{len(leaked)}** of {len(wrapped)}.",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = table()
    if not argv:
        print(text)
        return 0
    doc = DOC.read_text(encoding="utf-8")
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    fresh = doc[:start] + "\n" + text + "\n" + doc[end:]
    if argv[0] == "--check":
        if fresh != doc:
            print(f"{DOC} is stale: run python -m tests.vectors.make_attack_table --write")
            return 1
        return 0
    if argv[0] == "--write":
        DOC.write_text(fresh, encoding="utf-8")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
