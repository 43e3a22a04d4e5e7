#!/usr/bin/env python3
"""Count parliament findings in its `--json` output (one JSON object per line).

parliament's exit code is not enough on its own (some versions exit 0 with findings), so the
verdict is: no finding lines, no unparseable lines, and the expected number of files analysed.

Usage: parliament_findings.py PARLIAMENT_STDOUT EXIT_CODE FILE_COUNT
"""
from __future__ import annotations

import json
import sys


def main() -> int:
    out_path, exit_code, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    findings: list[dict] = []
    other: list[str] = []
    for line in open(out_path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            other.append(line)
            continue
        if isinstance(obj, dict) and "issue" in obj:
            findings.append(obj)
        else:
            other.append(line)
    for f in findings:
        loc = f.get("location", {})
        print(f"  parliament {f.get('severity')} {f.get('issue')} in {loc.get('filepath')} "
              f"line {loc.get('line')}: {f.get('title')} {json.dumps(f.get('detail'))}")
    for line in other:
        print(f"  parliament output: {line}")
    ok = not findings and not other and exit_code == 0 and files > 0
    print(f"parliament: {'PASS' if ok else 'FAIL'} ({files} policy file(s), {len(findings)} finding(s)"
          f", exit code {exit_code})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
