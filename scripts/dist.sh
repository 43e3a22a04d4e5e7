#!/usr/bin/env bash
# `make dist`: the four Lambda zips (slack-handler, slack-worker, sweeper, export) for arm64 and x86_64,
# runtime provided.al2023, each checked: one file at the zip's root, `bootstrap`, an ELF binary
# of the zip's architecture.
#
#   dist/lambda/<arm64|x86_64>/<function>/bootstrap.zip   (module input lambda_zip_dir =
#                                                          dist/lambda/<lambda_architecture>)
#
# Tools: cargo-lambda and zig (its cross linker), both from PyPI into a venv at .local/dist-venv
# (git-ignored); the Rust targets through rustup. The build is release (the size-tuned profile of
# Cargo.toml: LTO, stripped) in its own target directory, .local/dist-target, so it never
# disturbs the debug target of `make test`. Not part of `make test`: cold, it is two release
# builds of the AWS SDKs (about 15 minutes each on 2 cores) and needs ~10 GB of disk.
# Prints the time taken and each zip's size.
#
# CA_BUNDLE=path/to/<region>-bundle.pem puts the RDS CA bundle into the two functions that log in
# to the databases (slack-worker, sweeper) as `rds-ca-bundle.pem`, which Lambda extracts to
# /var/task: set `tls_ca_bundle = "/var/task/rds-ca-bundle.pem"` in each target of the config.
# Without it, targets with `admin_tls = "verify"` (the default) cannot connect from Lambda.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.local/dist-venv"
OUT="$ROOT/dist/lambda"
export CARGO_TARGET_DIR="${DIST_TARGET_DIR:-$ROOT/.local/dist-target}"
CARGO_LAMBDA_VERSION="${CARGO_LAMBDA_VERSION:-1.8.6}"
ZIG_VERSION="${ZIG_VERSION:-0.13.0}"
JOBS="${JOBS:-2}"
FUNCTIONS=(slack-handler slack-worker sweeper export)
WITH_CA=(slack-worker sweeper)
CA_BUNDLE="${CA_BUNDLE:-}"
START=$SECONDS

say() { printf 'dist: %s\n' "$*"; }
die() { say "ERROR: $*"; exit 2; }

if [ -n "$CA_BUNDLE" ]; then
    [ -f "$CA_BUNDLE" ] || die "CA_BUNDLE=$CA_BUNDLE: no such file"
    grep -q -- "-----BEGIN CERTIFICATE-----" "$CA_BUNDLE" || die "CA_BUNDLE=$CA_BUNDLE holds no PEM certificate"
    # The bastion gets the same file in its user data (16 KB in all): the region's bundle fits,
    # the global one (~160 KB) does not.
    [ "$(stat -c %s "$CA_BUNDLE")" -le 12288 ] || die "CA_BUNDLE=$CA_BUNDLE is over 12 KB: use your region's bundle, https://truststore.pki.rds.amazonaws.com/<region>/<region>-bundle.pem"
else
    say "no CA_BUNDLE given: targets with admin_tls = \"verify\" will not connect from Lambda (see the top of this script)"
fi

# --- tools ---------------------------------------------------------------------------------------
if ! "$VENV/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "cargo-lambda $CARGO_LAMBDA_VERSION " ||
    ! "$VENV/bin/python" -m ziglang version 2>/dev/null | grep -q "^${ZIG_VERSION}"; then
    say "installing cargo-lambda $CARGO_LAMBDA_VERSION and zig $ZIG_VERSION into $VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (install python3-venv)"
    "$VENV/bin/pip" install -q "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIG_VERSION" || die "pip install failed"
fi
export PATH="$VENV/bin:$PATH"
rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu >/dev/null || die "rustup target add failed"

# --- build ---------------------------------------------------------------------------------------
for arch in arm64 x86_64; do
    case "$arch" in
        arm64) flag=--arm64 ;;
        x86_64) flag=--x86-64 ;;
    esac
    say "building $arch (release, $CARGO_TARGET_DIR)"
    rm -rf "${OUT:?}/$arch"
    cargo lambda build --release "$flag" -j "$JOBS" \
        -p powerpole-slack-handler -p powerpole-sweeper -p powerpole-export \
        --output-format zip --lambda-dir "$OUT/$arch" || die "cargo lambda build $arch failed"
done

# --- the CA bundle -------------------------------------------------------------------------------
if [ -n "$CA_BUNDLE" ]; then
    for arch in arm64 x86_64; do
        for fn in "${WITH_CA[@]}"; do
            python3 - "$OUT/$arch/$fn/bootstrap.zip" "$CA_BUNDLE" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "a", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2], "rds-ca-bundle.pem")
PY
        done
    done
fi

# --- check ---------------------------------------------------------------------------------------
# e_machine of an ELF header: 0xB7 AArch64, 0x3E x86-64 (read with Python: no binutils needed).
check_zip() {
    local zip="$1" arch="$2" expected="$3"
    python3 - "$zip" "$arch" "$expected" <<'PY'
import struct, sys, zipfile
path, arch, expected = sys.argv[1], sys.argv[2], sys.argv[3].split()
want = {"arm64": 0xB7, "x86_64": 0x3E}[arch]
with zipfile.ZipFile(path) as z:
    names = z.namelist()
    if names != expected:
        sys.exit(f"{path}: holds {names}, expected exactly {expected} at its root")
    info = z.getinfo("bootstrap")
    head = z.open("bootstrap").read(20)
if head[:4] != b"\x7fELF" or head[4] != 2:
    sys.exit(f"{path}: bootstrap is not a 64-bit ELF binary")
machine = struct.unpack_from("<H", head, 18)[0]
if machine != want:
    sys.exit(f"{path}: bootstrap is for machine 0x{machine:x}, expected 0x{want:x} ({arch})")
if not (info.external_attr >> 16) & 0o111:
    sys.exit(f"{path}: bootstrap is not executable")
PY
}

failed=0
for arch in arm64 x86_64; do
    for fn in "${FUNCTIONS[@]}"; do
        zip="$OUT/$arch/$fn/bootstrap.zip"
        if [ ! -f "$zip" ]; then
            say "MISSING $zip"; failed=1; continue
        fi
        expected=bootstrap
        if [ -n "$CA_BUNDLE" ] && [[ " ${WITH_CA[*]} " == *" $fn "* ]]; then
            expected="bootstrap rds-ca-bundle.pem"
        fi
        if check_zip "$zip" "$arch" "$expected"; then
            say "ok $arch/$fn/bootstrap.zip $(du -h "$zip" | cut -f1) ($(stat -c %s "$zip") bytes)"
        else
            failed=1
        fi
    done
done
say "took $((SECONDS - START)) s"
exit $failed
