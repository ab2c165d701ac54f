"""A deterministic generator of scanner acceptance text (no real person's data).

* :func:`positives` — checksum/code-list-valid identifiers of every type, each in a clinical
  sentence with a supporting keyword, with the span of the identifier.
* :func:`lookalikes` — the same sentences with invalid values: failed checksums, SSN area
  000/666/9xx, group 00, serial 0000, codes not in the code lists, wrong NDC shapes, plus
  order numbers, dates and phone numbers in the same context.
* :func:`neutral` — clinical prose with numbers that are not identifiers (vitals, doses,
  dates, times, phone numbers, rooms, zip codes, lab values, years).
* :func:`mixed_text` — a large mixed corpus for the benchmark.

Values come from ``random.Random(seed)``; codes from the same lists the scanner uses.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from stdnum import luhn
from stdnum.us import rtn

from client.policy.codelists import icd9cm_codes, icd10cm_codes
from client.policy.icd9cm_codes import CODES as ICD9_BILLABLE

__all__ = ["Sample", "lookalikes", "mail_text", "mixed_text", "neutral", "positives"]


@dataclass(frozen=True)
class Sample:
    type: str
    text: str
    start: int
    end: int


def _place(type_: str, template: str, value: str) -> Sample:
    start = template.index("{v}")
    return Sample(type_, template.replace("{v}", value), start, start + len(value))


_CONTEXT = {
    "us-ssn": [
        "Patient's SSN is {v}; please update the chart.",
        "Social Security number {v} was on the intake form.",
        "Verify the member by SSN {v} before discussing benefits.",
    ],
    "credit-card": [
        "Copay charged to credit card {v}, exp 04/27.",
        "Card number {v} was declined at the front desk.",
        "Please bill the Visa {v} for the balance.",
    ],
    "aba-routing": [
        "Refund by ACH: routing number {v}, checking account on file.",
        "The bank routing number is {v} for the direct deposit.",
    ],
    "ndc": [
        "Dispensed NDC {v} (metformin 500 mg), 60 tablets.",
        "Pharmacy substituted national drug code {v} for the brand.",
    ],
    "icd-10-cm": [
        "Assessment: diagnosis {v}, follow up in 3 months.",
        "Claim lists ICD-10-CM {v} as the primary dx.",
    ],
    "icd-9-cm": [
        "Legacy record shows ICD-9 code {v} from the 2012 admission.",
        "Old claim used ICD-9-CM diagnosis {v}.",
    ],
    "cpt": [
        "Office visit billed as CPT {v} with modifier 25.",
        "Procedure code (CPT) {v} was submitted on the claim.",
    ],
    "hcpcs": [
        "Injection billed under HCPCS {v}, one unit.",
        "Supply code HCPCS {v} for the walker rental.",
    ],
}


def _ssn(r: random.Random) -> str:
    area = r.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def _card(r: random.Random, *, valid: bool = True) -> str:
    prefix, length = r.choice(
        [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16)]
    )
    body = prefix + "".join(str(r.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    check = luhn.calc_check_digit(body)
    if not valid:
        check = str((int(check) + r.randint(1, 9)) % 10)
    d = body + check
    if length == 15:
        return f"{d[:4]} {d[4:10]} {d[10:]}"
    sep = r.choice([" ", "-", ""])
    return sep.join(d[i : i + 4] for i in range(0, 16, 4))


def _aba(r: random.Random, *, valid: bool = True) -> str:
    prefix = r.choice([*range(1, 13), *range(21, 33), *range(61, 73), 80])
    body = f"{prefix:02d}" + "".join(str(r.randint(0, 9)) for _ in range(6))
    check = int(rtn.calc_check_digit(body))
    if not valid:
        check = (check + r.randint(1, 9)) % 10
    return body + str(check)


def _ndc(r: random.Random) -> str:
    def digits(n: int) -> str:
        return "".join(str(r.randint(0, 9)) for _ in range(n))

    shape = r.choice([(4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2), (11,)])
    return "-".join(digits(n) for n in shape)


def _dotted10(code: str) -> str:
    return code if len(code) <= 3 else code[:3] + "." + code[3:]


def _dotted9(code: str) -> str:
    cut = 4 if code.startswith("E") else 3
    return code if len(code) <= cut else code[:cut] + "." + code[cut:]


_ICD10 = sorted(c for c in icd10cm_codes() if len(c) >= 4)


def _value(type_: str, r: random.Random) -> str:
    if type_ == "us-ssn":
        return _ssn(r)
    if type_ == "credit-card":
        return _card(r)
    if type_ == "aba-routing":
        return _aba(r)
    if type_ == "ndc":
        return _ndc(r)
    if type_ == "icd-10-cm":
        return _dotted10(r.choice(_ICD10))
    if type_ == "icd-9-cm":
        return _dotted9(r.choice(ICD9_BILLABLE))
    if type_ == "cpt":
        return r.choice([f"{r.randint(100, 99499):05d}", f"{r.randint(0, 9999):04d}F"])
    if type_ == "hcpcs":
        return r.choice("ABCEGHJKLMPQRSTUV") + f"{r.randint(0, 9999):04d}"
    raise ValueError(type_)


def positives(n_per_type: int, *, seed: int = 1) -> Iterator[Sample]:
    r = random.Random(seed)
    for type_, templates in _CONTEXT.items():
        for _ in range(n_per_type):
            yield _place(type_, r.choice(templates), _value(type_, r))


def _invalid(type_: str, r: random.Random) -> str:
    if type_ == "us-ssn":
        kind = r.randrange(5)
        area, group, serial = r.randint(1, 665), r.randint(1, 99), r.randint(1, 9999)
        if kind == 0:
            area = 0
        elif kind == 1:
            area = 666
        elif kind == 2:
            area = r.randint(900, 999)
        elif kind == 3:
            group = 0
        else:
            serial = 0
        return f"{area:03d}-{group:02d}-{serial:04d}"
    if type_ == "credit-card":
        return _card(r, valid=False)
    if type_ == "aba-routing":
        return _aba(r, valid=False)
    if type_ == "ndc":  # wrong shapes: 3-4-3, 6-3-1, 10 digits
        return r.choice(
            [
                f"{r.randint(100, 999)}-{r.randint(1000, 9999)}-{r.randint(100, 999)}",
                f"{r.randint(100000, 999999)}-{r.randint(100, 999)}-{r.randint(0, 9)}",
                f"{r.randint(10**9, 10**10 - 1)}",
            ]
        )
    if type_ == "icd-10-cm":
        while True:
            code = (
                r.choice("ABCDEFGHIJKLMNOPQRSTVWXYZ")
                + f"{r.randint(0, 99):02d}{r.randint(0, 99):02d}"
            )
            if code not in icd10cm_codes():
                return _dotted10(code)
    if type_ == "icd-9-cm":
        while True:
            code = f"{r.randint(0, 999):03d}{r.randint(0, 99):02d}"
            if code not in icd9cm_codes() and code[:4] not in icd9cm_codes():
                return _dotted9(code)
    if type_ == "cpt":  # out of range or not 5 characters
        return r.choice(
            [f"{r.randint(0, 99):05d}", f"{r.randint(100000, 999999)}", f"{r.randint(1000, 9999)}X"]
        )
    if type_ == "hcpcs":  # letters HCPCS Level II does not use, or wrong length
        return r.choice(["D", "F", "I", "N", "O", "W", "X", "Y", "Z"]) + f"{r.randint(0, 9999):04d}"
    raise ValueError(type_)


_DECOYS = [
    "order number {v}",
    "invoice #{v}",
    "seen on {v}",
    "call {v}",
]


def _decoy(r: random.Random) -> str:
    kind = r.randrange(4)
    if kind == 0:
        return f"Order number {r.randint(10000, 99999)} shipped"
    if kind == 1:
        return f"seen on {r.randint(2000, 2030)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
    if kind == 2:
        return f"call {r.randint(200, 999)}-{r.randint(200, 999)}-{r.randint(1000, 9999)}"
    return f"({r.randint(200, 999)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}"


def lookalikes(n_per_type: int, *, seed: int = 2) -> Iterator[Sample]:
    """Invalid values in the positive contexts (``type`` says which detector must stay quiet)."""
    r = random.Random(seed)
    for type_, templates in _CONTEXT.items():
        for i in range(n_per_type):
            template = r.choice(templates)
            if i % 4 == 3:  # order numbers, dates and phone numbers in the same context
                yield _place(type_, template, _decoy(r))
            else:
                yield _place(type_, template, _invalid(type_, r))


_NEUTRAL = [
    "Patient is a {age}-year-old seen in clinic on {date} for follow-up of hypertension.",
    "BP {sys}/{dia}, HR {hr} bpm, temp {temp} F, SpO2 {spo2}% on room air.",
    "Started lisinopril {dose} mg daily; recheck BMP in {days} days.",
    "Glucose {glu} mg/dL, A1c {a1c}%, LDL {ldl} mg/dL, creatinine {cr} mg/dL.",
    "Call the nurse line at {phone} with questions, Monday to Friday.",
    "Appointment moved to {date} at {time} in room {room}, building B.",
    "Referral faxed to the cardiology office, {city}, IL {zip}.",
    "Weight {wt} lb, height {ht} in, BMI {bmi}; counselled on diet and exercise.",
    "The visit was billed to the patient's insurance on {date}; no balance due.",
    "Diagnosis discussed with the family; plan reviewed and questions answered.",
    "Physical therapy twice weekly for {weeks} weeks after the procedure on {date}.",
    "Vitamin B12 and vitamin D levels were normal; COVID-19 vaccine given in {year}.",
    "Order {order} for the walker was placed; pharmacy will dispense on {date}.",
    "Discussed medication adherence; refills sent to the pharmacy for {days} days.",
    "The G20 summit traffic delayed transport; patient arrived at {time}.",
    "MRI of the lumbar spine on {date} showed mild degenerative changes at L4-L5.",
    "Page {page} of {pages}. Printed {date} {time}. Fax {phone}.",
    "Invoice {order} from {year} was paid in full; account is current.",
]


def neutral(n: int, *, seed: int = 3) -> Iterator[str]:
    r = random.Random(seed)
    for _ in range(n):
        parts = []
        for _ in range(3):
            t = r.choice(_NEUTRAL)
            parts.append(
                t.format(
                    age=r.randint(18, 95),
                    date=f"{r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(2015, 2026)}",
                    sys=r.randint(95, 180),
                    dia=r.randint(55, 110),
                    hr=r.randint(50, 120),
                    temp=f"{r.uniform(97, 101):.1f}",
                    spo2=r.randint(88, 100),
                    dose=r.choice([2.5, 5, 10, 20, 40]),
                    days=r.choice([7, 14, 30, 90]),
                    glu=r.randint(70, 400),
                    a1c=f"{r.uniform(5, 12):.1f}",
                    ldl=r.randint(40, 220),
                    cr=f"{r.uniform(0.5, 3):.2f}",
                    phone=f"({r.randint(200, 999)}) {r.randint(200, 999)}-{r.randint(1000, 9999)}",
                    time=f"{r.randint(1, 12)}:{r.randint(0, 59):02d} {r.choice(['AM', 'PM'])}",
                    room=r.randint(100, 999),
                    city=r.choice(["Springfield", "Peoria", "Naperville"]),
                    zip=r.randint(60001, 62999),
                    wt=f"{r.uniform(100, 300):.1f}",
                    ht=r.randint(58, 78),
                    bmi=f"{r.uniform(17, 45):.1f}",
                    weeks=r.randint(2, 12),
                    year=r.randint(2015, 2026),
                    order=r.randint(10000, 999999),
                    page=r.randint(1, 9),
                    pages=r.randint(9, 20),
                )
            )
        yield " ".join(parts)


def mixed_text(size: int, *, seed: int = 4) -> str:
    """About ``size`` characters: mostly neutral prose, one identifier sentence in ten."""
    r = random.Random(seed)
    pos = positives(200, seed=seed)
    pool = [s.text for s in pos]
    prose = list(neutral(2000, seed=seed))
    out: list[str] = []
    total = 0
    while total < size:
        chunk = r.choice(pool) if r.random() < 0.1 else r.choice(prose)
        out.append(chunk)
        total += len(chunk) + 1
    return "\n".join(out)[:size]


_CORRESPONDENCE = [
    "Thanks for sending this over so quickly; I will take a look this afternoon.",
    "Could you please confirm whether the referral letter reached the specialist's office?",
    "The team meeting is moved to Thursday morning because of the holiday schedule.",
    "Please remember to complete the annual privacy training before the end of the month.",
    "I have attached the updated intake form and the consent document for your review.",
    "Let me know if you have any questions about the new scheduling workflow in the portal.",
    "Dr. Patel asked whether the lab results could be reviewed before the family meeting.",
    "We are still waiting for the insurance authorization; I will follow up with the payer.",
    "The front desk will call the patient to reschedule the appointment next week.",
    "Best regards, and have a good weekend. Maria Gonzalez, Practice Manager",
    "Kind regards from the Riverside Family Clinic billing office.",
    "This message may contain confidential information intended only for the recipient.",
]


def mail_text(size: int, *, seed: int = 5) -> str:
    """About ``size`` characters of realistic mail: correspondence (75 %), clinical notes
    with numbers (20 %) and identifier sentences (5 %)."""
    r = random.Random(seed)
    ids = [s.text for s in positives(200, seed=seed)]
    notes = list(neutral(2000, seed=seed))
    out: list[str] = []
    total = 0
    while total < size:
        x = r.random()
        chunk = (
            r.choice(ids)
            if x < 0.05
            else r.choice(notes)
            if x < 0.25
            else r.choice(_CORRESPONDENCE)
        )
        out.append(chunk)
        total += len(chunk) + 1
    return "\n".join(out)[:size]
