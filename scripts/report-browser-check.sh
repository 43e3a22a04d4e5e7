#!/usr/bin/env bash
# Opens the security team's session report (the HTML form of `powerpole audit --session ID
# --report --format html`) in a real browser, headless Chromium, and checks that what a reader
# sees holds the timeline: the header, the counts, and rows from each of the three sources
# (powerpole's trail, the shell transcript, the database's audit log) in time order.
#
#   scripts/report-browser-check.sh [REPORT.html]
#
# Without an argument it checks the page tests/audit_report.rs writes after a whole lifecycle
# against the stand-ins (target/tmp/session-report.html), running that test first when the page
# is missing (the stand-ins must be up: `scripts/standins.sh start && source .local/standins.env`).
# Installs Debian's chromium when no chromium is on PATH (needs root and apt-get). Not part of
# `make test`: the browser is a large download.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAGE="${1:-$ROOT/target/tmp/session-report.html}"

say() { printf 'report-browser-check: %s\n' "$*"; }
fail() { say "FAIL: $*"; exit 1; }

if [ ! -f "$PAGE" ]; then
    if [ $# -gt 0 ]; then
        fail "no such file: $PAGE"
    fi
    say "no report yet; running tests/audit_report.rs to make one"
    (cd "$ROOT" && cargo test -j2 --workspace --test audit_report) >&2 || fail "the audit_report test failed"
    [ -f "$PAGE" ] || fail "the test did not write $PAGE"
fi

browser=""
for candidate in chromium chromium-browser; do
    if command -v "$candidate" >/dev/null 2>&1; then
        browser="$candidate"
        break
    fi
done
if [ -z "$browser" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        fail "no chromium on PATH; install Debian's chromium package"
    fi
    say "installing Debian's chromium"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || fail "apt-get install chromium failed"
    browser=chromium
fi
say "$("$browser" --version 2>/dev/null | head -n1)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The DOM after Chromium parsed and laid out the page (what a reader's browser holds), and a
# screenshot for a person to look at.
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --dump-dom "file://$PAGE" >"$work/dom.html" 2>"$work/stderr" || fail "chromium could not render $PAGE: $(tail -n3 "$work/stderr")"
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --window-size=1400,1000 --screenshot="$work/report.png" "file://$PAGE" >/dev/null 2>&1 || true

python3 - "$work/dom.html" <<'PY' || fail "the rendered page does not hold the timeline (see above)"
import re, sys
from html.parser import HTMLParser

class Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.in_cell, self.h1, self.in_h1 = [], None, "", False, "", False
    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = {"class": dict(attrs).get("class", ""), "cells": []}
        elif tag == "td" and self.row is not None:
            self.in_cell, self.cell = True, ""
        elif tag == "h1":
            self.in_h1 = True
    def handle_endtag(self, tag):
        if tag == "td" and self.in_cell:
            self.row["cells"].append(self.cell.strip())
            self.in_cell = False
        elif tag == "tr" and self.row is not None:
            if self.row["cells"]:
                self.rows.append(self.row)
            self.row = None
        elif tag == "h1":
            self.in_h1 = False
    def handle_data(self, data):
        if self.in_cell:
            self.cell += data
        if self.in_h1:
            self.h1 += data

dom = open(sys.argv[1], encoding="utf-8").read()
p = Rows()
p.feed(dom)
problems = []
if not p.h1.startswith("Session pp-"):
    problems.append(f"no 'Session pp-...' heading (got {p.h1!r})")
for needle in ("Shell commands:", "Statements:", "Refused:"):
    if needle not in dom:
        problems.append(f"no {needle!r}")
sources = [r["class"].split()[0] for r in p.rows if r["class"]]
for source in ("powerpole", "shell", "database"):
    if source not in sources:
        problems.append(f"no timeline row from {source}")
times = [r["cells"][0] for r in p.rows]
if times != sorted(times):
    problems.append("the timeline is not in time order")
if not any("problem" in r["class"] for r in p.rows):
    problems.append("no refused statement is marked")
for problem in problems:
    print(f"  {problem}")
print(f"  {len(p.rows)} timeline row(s): " + ", ".join(f"{s} {sources.count(s)}" for s in ("powerpole", "shell", "database")))
sys.exit(1 if problems else 0)
PY
mkdir -p "$ROOT/target/tmp"
cp "$work/report.png" "$ROOT/target/tmp/session-report.png" 2>/dev/null && say "screenshot: target/tmp/session-report.png"
say "PASS: $PAGE renders in $browser with its timeline"
