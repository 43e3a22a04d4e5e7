#!/usr/bin/env python3
"""Bring parliament's copy of the IAM definitions up to date where AWS added something since its
release (parliament 1.6.4 ships a snapshot of the Service Authorization Reference).

Each addition names the AWS page that documents it; nothing else is changed, so a finding that is
not about an addition below still counts. Idempotent: run before every parliament run.

Additions:
  - ssm:StartSession, condition key ssm:SessionDocumentAccessCheck (Bool): "Service Authorization
    Reference, AWS Systems Manager, Condition keys" and the Session Manager guide, "Enforce a
    session document permission check for the AWS CLI". infra/modules/powerpole/policies/engineer.json uses it so that a
    session with any document but powerpole's is refused.

Usage: parliament_definitions.py VENV_PYTHON   (prints what it added; exit 1 if it cannot)
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ADDITIONS = [
    # (service prefix, action, condition key, type, description)
    ("ssm", "StartSession", "ssm:SessionDocumentAccessCheck", "Bool",
     "Filters access by verifying that a user also has access to the default Session Manager configuration document"),
]


def main() -> int:
    python = sys.argv[1]
    where = subprocess.run([python, "-c", "import parliament, os; print(os.path.dirname(parliament.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    path = Path(where) / "iam_definition.json"
    services = json.loads(path.read_text())
    added = []
    for prefix, action, key, kind, description in ADDITIONS:
        service = next((s for s in services if s.get("prefix") == prefix), None)
        privilege = next((p for p in (service or {}).get("privileges", []) if p["privilege"] == action), None)
        if service is None or privilege is None:
            print(f"parliament definitions: {prefix}:{action} not found in {path}")
            return 1
        if not any(c["condition"] == key for c in service["conditions"]):
            service["conditions"].append({"condition": key, "description": description, "type": kind})
            added.append(f"{key} (service)")
        general = next((r for r in privilege["resource_types"] if r["resource_type"] == ""), None)
        if general is None:
            general = {"condition_keys": [], "dependent_actions": [], "resource_type": ""}
            privilege["resource_types"].append(general)
        if key not in general["condition_keys"]:
            general["condition_keys"].append(key)
            added.append(f"{key} for {prefix}:{action}")
    if added:
        path.write_text(json.dumps(services))
    print(f"parliament definitions: {len(ADDITIONS)} documented addition(s) present"
          f"{' (added now: ' + ', '.join(added) + ')' if added else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
