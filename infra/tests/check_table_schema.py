#!/usr/bin/env python3
"""Check that the DynamoDB table in infra/ is the table the store code defines.

The store's definition is `TableDefinition` in src/store/schema.rs, serialised by serde_json
(`powerpole table schema` prints it). Give that JSON as a file in $POWERPOLE_TABLE_SCHEMA_JSON;
the check fails without it (scripts/infra-check.sh sets it from the binary).

The Terraform side is read from infra/modules/powerpole/*.tf with python-hcl2. Compared:
key names and types, index names, keys, key types and projections, TTL attribute, billing
mode; and, because the store relies on them, that TTL is enabled and the table has
point-in-time recovery, KMS encryption and deletion protection. One summary line per check;
exit 1 if any fails.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "infra" / "modules" / "powerpole"


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals and block labels; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def block(value: Any) -> dict[str, Any]:
    """A nested block parses as a list of one dict."""
    if isinstance(value, list):
        return value[0] if value else {}
    return value or {}


def load_terraform_table() -> tuple[str, dict[str, Any]]:
    tables = []
    for tf in sorted(MODULE.glob("*.tf")):
        with tf.open() as fh:
            parsed = hcl2.load(fh)
        for resources in parsed.get("resource", []):
            for rtype, named in resources.items():
                if unquote(rtype) != "aws_dynamodb_table":
                    continue
                for name, body in named.items():
                    tables.append((f"{tf.name}: aws_dynamodb_table.{unquote(name)}", body))
    if len(tables) != 1:
        raise SystemExit(f"expected exactly one aws_dynamodb_table in {MODULE}, found {len(tables)}")
    return tables[0]


def terraform_definition(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The Terraform table in the shape of the Rust TableDefinition, plus its attribute types."""
    types = {unquote(a["name"]): unquote(a["type"]) for a in body.get("attribute", [])}

    def key(name: Any) -> dict[str, Any]:
        n = unquote(name)
        return {"name": n, "kind": types.get(n, "<no attribute block>")}

    indexes = [
        {
            "name": unquote(g.get("name")),
            "hash_key": key(g.get("hash_key")),
            "range_key": key(g.get("range_key")),
            "projection": unquote(g.get("projection_type")),
        }
        for g in body.get("global_secondary_index", [])
    ]
    ttl = block(body.get("ttl"))
    definition = {
        "hash_key": key(body.get("hash_key")),
        "range_key": key(body.get("range_key")),
        "global_secondary_indexes": indexes,
        "ttl_attribute": unquote(ttl.get("attribute_name")),
        "billing_mode": unquote(body.get("billing_mode")),
    }
    return definition, types


def by_name(indexes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in indexes}


def main() -> int:
    source_env = os.environ.get("POWERPOLE_TABLE_SCHEMA_JSON")
    if not source_env:
        print("schema: FAILED: set POWERPOLE_TABLE_SCHEMA_JSON to the output of `powerpole table schema`")
        return 1
    source = Path(source_env)
    try:
        expected = json.loads(source.read_text())
    except (OSError, json.JSONDecodeError) as err:
        print(f"schema: FAILED: cannot read the store's schema from {source}: {err}")
        return 1
    origin = "`powerpole table schema`"
    where, body = load_terraform_table()
    actual, types = terraform_definition(body)

    results: list[tuple[str, bool, str]] = []

    def check(name: str, ok: bool, detail: str) -> None:
        results.append((name, ok, detail))

    for part in ("hash_key", "range_key"):
        check(part, actual[part] == expected[part], f"terraform {actual[part]} vs store {expected[part]}")

    want, have = by_name(expected["global_secondary_indexes"]), by_name(actual["global_secondary_indexes"])
    check(
        "index names",
        set(want) == set(have),
        f"terraform {sorted(have)} vs store {sorted(want)}",
    )
    for name in sorted(set(want) & set(have)):
        check(f"index {name}", have[name] == want[name], f"terraform {have[name]} vs store {want[name]}")

    check("ttl attribute", actual["ttl_attribute"] == expected["ttl_attribute"],
          f"terraform {actual['ttl_attribute']!r} vs store {expected['ttl_attribute']!r}")
    check("billing mode", actual["billing_mode"] == expected["billing_mode"],
          f"terraform {actual['billing_mode']!r} vs store {expected['billing_mode']!r}")

    used = {actual["hash_key"]["name"], actual["range_key"]["name"]}
    for idx in actual["global_secondary_indexes"]:
        used |= {idx["hash_key"]["name"], idx["range_key"]["name"]}
    check("attribute blocks", set(types) == used,
          f"declared {sorted(types)}, used by keys {sorted(used)}")

    check("ttl enabled", block(body.get("ttl")).get("enabled") is True, "ttl { enabled = true }")
    check("point-in-time recovery", block(body.get("point_in_time_recovery")).get("enabled") is True,
          "point_in_time_recovery { enabled = true }")
    sse = block(body.get("server_side_encryption"))
    check("kms encryption", sse.get("enabled") is True and bool(sse.get("kms_key_arn")),
          "server_side_encryption { enabled = true, kms_key_arn = the module key }")
    check("deletion protection", body.get("deletion_protection_enabled") is True,
          "deletion_protection_enabled = true")

    failed = [r for r in results if not r[1]]
    for name, ok, detail in results:
        print(f"  schema ok   {name}" if ok else f"  schema FAIL {name}: {detail}")
    print(f"schema: {where} against {origin} ({source}): "
          f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
