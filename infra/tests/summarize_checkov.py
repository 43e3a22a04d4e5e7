#!/usr/bin/env python3
"""Read checkov's JSON report and decide: 0 failed checks, 0 parsing errors, at least one
passed check, and every skip an inline `#checkov:skip=CKV_...:reason` with a written reason.

Usage: summarize_checkov.py RESULTS_JSON   (prints one summary line; exit 1 on failure)
"""
from __future__ import annotations

import json
import sys

MIN_REASON = 15  # characters: "ok" or "n/a" is not a reason


def main() -> int:
    data = json.load(open(sys.argv[1]))
    reports = data if isinstance(data, list) else [data]
    passed = failed = skipped = parse_errors = 0
    problems: list[str] = []
    for report in reports:
        summary = report.get("summary", {})
        passed += summary.get("passed", 0)
        failed += summary.get("failed", 0)
        skipped += summary.get("skipped", 0)
        parse_errors += summary.get("parsing_errors", 0)
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            problems.append(f"FAILED {check['check_id']} {check['resource']} ({check['file_path']}:"
                            f"{check['file_line_range'][0]}): {check['check_name']}")
        for check in results.get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment") or ""
            where = f"{check['check_id']} {check['resource']} ({check['file_path']})"
            if len(reason.strip()) < MIN_REASON:
                problems.append(f"SKIP WITHOUT A REASON {where}: {reason!r}")
            else:
                print(f"  checkov skip {where}: {reason}")
        for path in results.get("parsing_errors", []):
            problems.append(f"PARSE ERROR {path}")
    for p in problems:
        print(f"  checkov {p}")
    ok = failed == 0 and parse_errors == 0 and passed > 0 and not problems
    print(f"checkov: {'PASS' if ok else 'FAIL'} ({passed} passed, {failed} failed, {skipped} skipped "
          f"inline, {parse_errors} parsing errors)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
