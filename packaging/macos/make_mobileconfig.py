"""Wrap a Sealmail policy.json into a macOS configuration profile (.mobileconfig).

    python packaging/macos/make_mobileconfig.py policy.json "Example Clinic" > out.mobileconfig

The Custom Settings payload (``com.apple.ManagedClient.preferences``) for the domain
``org.sealmail.Sealmail`` lands in ``/Library/Managed Preferences/org.sealmail.Sealmail.plist``
on the Mac; Sealmail reads its ``Policy`` key first (client/store/policyfile.py). JSON null has
no property-list form: such keys are left out (the policy schema treats absent as default).
The file is validated with the same code Sealmail uses before it is wrapped. Sign it for
production (``security cms -S -N "Developer ID Installer: ..." -i in -o out``) or let the
MDM sign it.
"""

from __future__ import annotations

import json
import plistlib
import sys
import uuid
from pathlib import Path
from typing import Any

DOMAIN = "org.sealmail.Sealmail"


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value if v is not None]
    return value


def profile(policy: dict[str, Any], organisation: str) -> dict[str, Any]:
    ident = f"sealmail.policy.{uuid.uuid5(uuid.NAMESPACE_DNS, organisation)}"
    # stable UUIDs per organisation: re-deploying replaces the profile instead of adding one
    return {
        "PayloadDisplayName": "Sealmail organisation policy",
        "PayloadDescription": "The organisation policy of Sealmail secure mail.",
        "PayloadIdentifier": ident,
        "PayloadOrganization": organisation,
        "PayloadScope": "System",
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, ident)).upper(),
        "PayloadVersion": 1,
        "PayloadContent": [
            {
                "PayloadType": "com.apple.ManagedClient.preferences",
                "PayloadIdentifier": f"{ident}.prefs",
                "PayloadUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, ident + ".prefs")).upper(),
                "PayloadVersion": 1,
                "PayloadDisplayName": "Sealmail",
                "PayloadContent": {
                    DOMAIN: {"Forced": [{"mcx_preference_settings": {"Policy": policy}}]}
                },
            }
        ],
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    data = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    policy = _no_nulls(data)
    try:  # validate as Sealmail will (when run from the repository or its venv)
        from client.policy.orgpolicy import parse_policy

        parse_policy(policy)
    except ImportError:
        pass
    sys.stdout.buffer.write(plistlib.dumps(profile(policy, argv[1]), fmt=plistlib.FMT_XML))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
