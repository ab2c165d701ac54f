"""Code lists the scanner validates against (loaded once, lazily, from shipped packages).

* ICD-10-CM: the CMS/CDC code list shipped by ``simple-icd-10-cm`` (its
  ``data/code-list-*.txt``: chapters, blocks, categories, subcategories and codes with a
  7th character). We read the list directly instead of importing the package, whose
  import parses a 10 MB XML file (3.7 s) we do not need.
* ICD-9-CM: CMS's final list (v32), frozen since 2014, generated into
  :mod:`client.policy.icd9cm_codes` (billable codes) plus their category and subcategory
  prefixes.
* CPT: the code list is licensed by the AMA and not shipped; CPT findings rest on
  structure (5 digits, or 4 digits + F/T) and keywords nearby.

Codes are kept without dots, upper case.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

__all__ = ["icd9cm_codes", "icd10cm_codes"]

_ICD10_SHAPE = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}", re.ASCII)


@functools.cache
def icd10cm_codes() -> frozenset[str]:
    """Every ICD-10-CM category, subcategory and code (no dots)."""
    # find_spec locates the package without running its __init__ (which parses the XML)
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise RuntimeError("simple-icd-10-cm is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    names = sorted(p.name for p in data.glob("code-list-*.txt"))
    if not names:  # pragma: no cover - a broken install
        raise RuntimeError("simple-icd-10-cm ships no code list")
    text = (data / names[-1]).read_text(encoding="ascii")
    return frozenset(
        c for c in text.replace("\r", "\n").split() if _ICD10_SHAPE.fullmatch(c) is not None
    )


@functools.cache
def icd9cm_codes() -> frozenset[str]:
    """Every ICD-9-CM diagnosis code, with its category and subcategory prefixes."""
    from client.policy.icd9cm_codes import CODES

    out: set[str] = set()
    for code in CODES:
        out.add(code)
        first = 4 if code.startswith("E") else 3
        for n in range(first, len(code)):
            out.add(code[:n])
    return frozenset(out)
