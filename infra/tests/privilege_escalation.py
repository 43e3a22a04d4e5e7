#!/usr/bin/env python3
"""Verdict on `parliament --json --include-community-auditors` over one policy: no
PRIVILEGE_ESCALATION finding (the Rhino Security Labs combinations), and parliament really ran
(exit code 0 or 1, every output line a JSON finding). Other community findings are listed, not
failed on: the plain run (parliament_findings.py) already holds every policy to 0 findings.

Usage: privilege_escalation.py PARLIAMENT_OUTPUT EXIT_CODE WHAT
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    out_path, exit_code, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    findings, other = [], []
    for line in open(out_path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            other.append(line)
            continue
        (findings if isinstance(obj, dict) and "issue" in obj else other).append(obj if isinstance(obj, dict) else line)
    escalations = [f for f in findings if f.get("issue") == "PRIVILEGE_ESCALATION"]
    for f in findings:
        print(f"  parliament community {f.get('severity')} {f.get('issue')}: {f.get('title')} {json.dumps(f.get('detail'))}")
    for line in other:
        print(f"  parliament output: {line}")
    ok = not escalations and not other and exit_code in (0, 1)
    print(f"parliament community auditors on {what}: {'PASS' if ok else 'FAIL'} ({len(escalations)} privilege "
          f"escalation finding(s), {len(findings)} community finding(s) in all, exit code {exit_code})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
