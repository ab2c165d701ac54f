"""``sealmail policy`` and ``sealmail audit`` as a separate process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import REPO, Cli

MSG = (
    b"From: alice@clinic.example\r\nTo: bob@partner.example\r\nSubject: [secure] labs\r\n"
    b"Message-ID: <1@clinic.example>\r\n\r\nPatient SSN 123-45-6789.\r\n"
)


def test_scan_json_exact_shape(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "m.eml"
    f.write_bytes(MSG)
    out = json.loads(cli.ok("policy", "scan", str(f), "--json").text)
    assert out == {
        "findings": [{"type": "us-ssn", "start": 27, "end": 38, "confidence": "high"}],
        "level": "encrypted",
    }
    text = tmp_path / "t.txt"
    text.write_text("Nothing to see. Dx E11.9 at the clinic.")
    out = json.loads(cli.ok("policy", "scan", str(text), "--json").text)
    assert [f["type"] for f in out["findings"]] == ["icd-10-cm"] and out["level"] == "encrypted"


def test_org_policy_from_env_overrides(cli: Cli, tmp_path: Path) -> None:
    pol = tmp_path / "policy.json"
    pol.write_text(json.dumps({"version": 1, "detectors": {"icd-10-cm": {"enabled": False}}}))
    text = tmp_path / "t.txt"
    text.write_text("Dx E11.9")
    res = cli.ok("policy", "scan", str(text), "--json", env={"SEALMAIL_POLICY": str(pol)})
    assert json.loads(res.text) == {"findings": [], "level": "tls"}
    pol.write_text('{"version": 1, "minimum_level": "nope"}')
    res = cli("policy", "scan", str(text), "--json", env={"SEALMAIL_POLICY": str(pol)})
    assert res.returncode == 12 and "minimum_level" in res.stderr


def test_validate(cli: Cli, tmp_path: Path) -> None:
    cli.ok("policy", "validate", str(REPO / "packaging/policy/example-clinic.json"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "subject_tags": [""], "allowed_methods": []}')
    res = cli("policy", "validate", str(bad), "--json")
    assert res.returncode == 12
    assert len(json.loads(res.text)["problems"]) == 2


def test_plan_holds_without_key_and_audit_commands(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "m.eml"
    f.write_bytes(MSG)
    pol = tmp_path / "policy.json"
    pol.write_text('{"version": 1, "password_envelopes": false}')
    res = cli("policy", "plan", str(f), "--json", env={"SEALMAIL_POLICY": str(pol)})
    assert res.returncode == 13, res.stderr
    out = json.loads(res.text)
    assert out["decision"] == "hold" and out["level"] == "encrypted"
    (bob,) = out["recipients"]
    assert bob["method"] is None and bob["fixes"]
    res = cli("policy", "plan", str(f), "--json", "--level", "tls")  # envelopes allowed
    out = json.loads(res.text)
    assert out["level"] == "encrypted" and out["recipients"][0]["method"] == "envelope"
    assert {"user-level", "subject-tag", "finding"} <= {r["rule"] for r in out["reasons"]}
    assert json.loads(cli.ok("audit", "verify", "--json").text)["ok"] is True
    assert json.loads(cli.ok("audit", "export", "--json").text)["records"] == []
