#!/usr/bin/env python3
"""The module's README (infra/modules/powerpole/README.md): its inputs and outputs, generated from
the module's HCL (every `variable` and `output` block of every .tf file, read with python-hcl2),
between the markers `<!-- BEGIN GENERATED -->` and `<!-- END GENERATED -->`; the text around them
is written by hand.

  module_readme.py --check   exit 1 (and show what differs) unless the README holds exactly what
                             the HCL generates (scripts/infra-check.sh runs this);
  module_readme.py --write   rewrite the generated part.
"""
from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path

import hcl2

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "infra" / "modules" / "powerpole"
README = MODULE / "README.md"
BEGIN = "<!-- BEGIN GENERATED: infra/tests/module_readme.py --write -->"
END = "<!-- END GENERATED -->"


def clean(value):
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items() if k != "__is_block__"}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def expression(value) -> str:
    """An HCL expression as python-hcl2 gives it, shown as HCL."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{(.*)\}", value.strip(), re.S)
        return m.group(1) if m else json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(expression(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {expression(v)}" for k, v in value.items()) + " }"
    return str(value)


def cell(text: str) -> str:
    """One table cell: a heredoc's markers dropped, whitespace collapsed, pipes escaped."""
    text = re.sub(r"^<<-?(\w+)\s*(.*?)\s*\1$", r"\2", text.strip(), flags=re.S)
    return re.sub(r"\s+", " ", text).replace('\\"', '"').replace("|", "\\|").strip()


def type_of(value) -> str:
    """A type constraint as HCL writes it (python-hcl2 gives a bare `string` as a plain string)."""
    if isinstance(value, str) and re.fullmatch(r"[a-z]+", value):
        return value
    return expression(value)


def blocks(kind: str) -> list[tuple[str, dict, str]]:
    found = []
    for tf in sorted(MODULE.glob("*.tf")):
        with tf.open() as fh:
            parsed = clean(hcl2.load(fh))
        for block in parsed.get(kind, []):
            for name, body in block.items():
                found.append((name, body, tf.name))
    return sorted(found)


def generate() -> str:
    lines = [BEGIN, "", "### Inputs", "", "| name | type | default | description |", "|---|---|---|---|"]
    for name, body, file in blocks("variable"):
        default = "required" if "default" not in body else f"`{cell(expression(body['default']))}`"
        kind = f"`{cell(type_of(body.get('type', 'any')))}`"
        lines.append(f"| `{name}` | {kind} | {default} | {cell(body.get('description', ''))} ({file}) |")
    lines += ["", "### Outputs", "", "| name | description |", "|---|---|"]
    for name, body, file in blocks("output"):
        lines.append(f"| `{name}` | {cell(body.get('description', ''))} ({file}) |")
    lines += ["", END]
    return "\n".join(lines)


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) == 2 else ""
    if mode not in ("--check", "--write"):
        print(__doc__, file=sys.stderr)
        return 2
    text = README.read_text() if README.exists() else ""
    if BEGIN not in text or END not in text:
        print(f"module readme: FAILED ({README.relative_to(ROOT)} has no generated part between the markers)")
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    wanted = head + generate() + tail
    inputs, outputs = len(blocks("variable")), len(blocks("output"))
    if mode == "--write":
        README.write_text(wanted)
        print(f"module readme: written ({inputs} inputs, {outputs} outputs)")
        return 0
    if wanted != text:
        diff = difflib.unified_diff(text.splitlines(), wanted.splitlines(), "README.md", "generated", lineterm="", n=0)
        for line in list(diff)[:40]:
            print(f"  {line}")
        print(f"module readme: FAILED ({README.relative_to(ROOT)} differs from the HCL; run: PYTHONPATH=.local/venv-infra/hcl2 .local/venv-infra/bin/python infra/tests/module_readme.py --write)")
        return 1
    print(f"module readme: PASS ({inputs} inputs, {outputs} outputs, as the HCL declares them)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
