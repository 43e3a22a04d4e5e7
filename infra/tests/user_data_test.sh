#!/usr/bin/env bash
# Runs the bastion user data (src/bastion/user-data.sh) for real and checks what it promises.
#
# The throwaway root: a private mount and network namespace (unshare), a tmpfs in it holding an
# overlay of / (so every file the script writes lands in memory and vanishes with the namespace),
# and chroot into that overlay. The network namespace has the metadata address on its loopback,
# served by a stand-in (python3 http.server as root), so the nftables rule the script installs is
# tested against real packets. dnf and systemctl are stand-ins that record their calls (there is
# no package repository or init system to talk to); everything else (useradd, passwd, gpasswd,
# visudo, nft, sudo, runuser) is the real tool.
#
# Each check is first shown to fail without the script (the agent's own sudo grant for ssm-user
# is put in place, and a non-root user reaches the metadata stand-in), so the test cannot pass
# for a reason other than the script.
#
# Needs root (namespaces, mounts); installs sudo, nftables and shellcheck from Debian's packages
# when missing. Usage: infra/tests/user_data_test.sh   (exit 0: every check passed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SCRIPT="$ROOT/src/bastion/user-data.sh"
say() { printf 'user-data: %s\n' "$*"; }

if [ "${1:-}" != "--inside" ]; then
    [ "$(id -u)" = 0 ] || { say "FAIL: needs root (namespaces and mounts)"; exit 1; }
    missing=()
    for tool in sudo:sudo nft:nftables shellcheck:shellcheck; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]} (Debian packages)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null ||
            { say "FAIL: apt-get install ${missing[*]} failed"; exit 1; }
    fi
    shellcheck --shell=bash "$SCRIPT" "${BASH_SOURCE[0]}" || { say "FAIL: shellcheck"; exit 1; }
    say "shellcheck: clean"
    exec unshare --mount --net --fork "${BASH_SOURCE[0]}" --inside
fi

# --- Inside the private namespaces ----------------------------------------------------------------

IMDS=169.254.169.254
SESSION_USER="$(sed -n 's/^SESSION_USER=//p' "$SCRIPT")"
[ -n "$SESSION_USER" ] || { say "FAIL: no SESSION_USER= in $SCRIPT"; exit 1; }
FAILS=0
check() { # check "what" command...: passes when the command succeeds
    local what="$1"; shift
    if "$@" >/dev/null 2>&1; then say "ok: $what"; else say "FAIL: $what"; FAILS=$((FAILS + 1)); fi
}
refused() { # refused "what" command...: passes when the command fails
    local what="$1"; shift
    if "$@" >/dev/null 2>&1; then say "FAIL: $what"; FAILS=$((FAILS + 1)); else say "ok: $what"; fi
}

mount --make-rprivate /
T="$(mktemp -d)"
mount -t tmpfs tmpfs "$T"
# throwaway_root DIR: an overlay of / at DIR/root, with its own /dev, /proc, /run and /tmp.
throwaway_root() {
    mkdir "$1/upper" "$1/work" "$1/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$1/upper,workdir=$1/work" "$1/root"
    mount --rbind /dev "$1/root/dev"
    mount -t proc proc "$1/root/proc"
    mount -t tmpfs tmpfs "$1/root/run"
    mount -t tmpfs tmpfs "$1/root/tmp"
}
# stand_ins ROOT [FAILING]: dnf and systemctl stand-ins that record their calls; a call whose
# arguments equal FAILING fails (exit 1) after being recorded.
stand_ins() {
    mkdir -p "$1/usr/local/sbin"
    for tool in dnf systemctl; do
        printf '#!/bin/sh\necho "%s $*" >>/var/log/powerpole-stand-ins.log\n[ "$*" != "%s" ]\n' "$tool" "${2:-}" >"$1/usr/local/sbin/$tool"
        chmod 0755 "$1/usr/local/sbin/$tool"
    done
}

# --- Fail closed: the nftables service cannot be enabled ------------------------------------------
# Without the service the rule is gone after a reboot (the metadata service open to the session
# user): the script must stop, and never start the agent (so nobody can enter the bastion).
for failing in "enable nftables" "is-enabled --quiet nftables"; do
    F="$T/fail-${failing// /-}"
    mkdir "$F"
    throwaway_root "$F"
    stand_ins "$F/root" "$failing"
    cp "$SCRIPT" "$F/root/tmp/user-data.sh"
    if chroot "$F/root" env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash /tmp/user-data.sh >"$F/run.log" 2>&1; then
        say "FAIL: the script ran to its end although \`systemctl $failing\` failed"
        FAILS=$((FAILS + 1))
    else
        say "ok: the script fails when \`systemctl $failing\` fails"
    fi
    calls="$(cat "$F/root/var/log/powerpole-stand-ins.log")"
    check "control: the failing call was made (systemctl $failing)" grep -qxF "systemctl $failing" <<<"$calls"
    refused "the agent is never started when the firewall cannot be kept (systemctl $failing)" grep -qxF "systemctl start amazon-ssm-agent" <<<"$calls"
done
# The failed runs loaded the rule into this network namespace: remove it, so that the controls
# below see the network as the script finds it.
nft delete table inet powerpole_imds 2>/dev/null || true
refused "no '|| true' on the user data's nftables lines" grep -nE 'nft.*\|\|[[:space:]]*true' "$SCRIPT"

throwaway_root "$T"
R="$T/root"

# The metadata address, and a stand-in that answers on it.
ip link set lo up
ip addr add "$IMDS/32" dev lo
python3 -m http.server --bind "$IMDS" 80 --directory "$T" >/dev/null 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -s -o /dev/null -m 1 "http://$IMDS/" && break; sleep 0.1; done

# dnf and systemctl stand-ins: they record their calls.
stand_ins "$R"
in_root() { chroot "$R" env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
as_user() { local user="$1"; shift; in_root runuser -u "$user" -- "$@"; }

# What Amazon Linux has before the script: the agent's ssm-user with passwordless sudo.
in_root useradd --create-home ssm-user
echo 'ssm-user ALL=(ALL) NOPASSWD:ALL' >"$R/etc/sudoers.d/ssm-agent-users"
chmod 0440 "$R/etc/sudoers.d/ssm-agent-users"
in_root useradd --create-home powerpole-probe
# And the AMI's ec2-user, in wheel with cloud-init's passwordless sudo.
in_root groupadd -f wheel
in_root useradd --create-home --groups wheel ec2-user
echo 'ec2-user ALL=(ALL) NOPASSWD:ALL' >"$R/etc/sudoers.d/90-cloud-init-users"
chmod 0440 "$R/etc/sudoers.d/90-cloud-init-users"
check "control: before the script, ssm-user has passwordless sudo" as_user ssm-user sudo -n true
check "control: before the script, ec2-user has passwordless sudo" as_user ec2-user sudo -n true
check "control: before the script, a non-root user reaches the metadata address" as_user powerpole-probe curl -sf -m 2 "http://$IMDS/"

cp "$SCRIPT" "$R/tmp/user-data.sh"
if in_root bash /tmp/user-data.sh >"$T/run.log" 2>&1; then
    say "ok: the script ran to its end"
else
    sed 's/^/  | /' "$T/run.log"
    say "FAIL: the script failed"
    exit 1
fi

check "the session user $SESSION_USER exists" in_root id -u "$SESSION_USER"
refused "the session user cannot sudo" as_user "$SESSION_USER" sudo -n true
refused "ssm-user cannot sudo" as_user ssm-user sudo -n true
refused "ec2-user cannot sudo (a RunAs tag could choose it)" as_user ec2-user sudo -n true
refused "the session user is in no admin group" sh -c "chroot '$R' id -nG '$SESSION_USER' | grep -wqE 'wheel|sudo|adm'"
refused "the session user cannot reach the metadata address" as_user "$SESSION_USER" curl -sf -m 2 "http://$IMDS/"
refused "ssm-user cannot reach the metadata address" as_user ssm-user curl -sf -m 2 "http://$IMDS/"
refused "another non-root user cannot reach the metadata address" as_user powerpole-probe curl -sf -m 2 "http://$IMDS/"
check "root (the SSM agent) still reaches the metadata address" in_root curl -sf -m 2 "http://$IMDS/"
check "the rule is kept for the nftables service" grep -q powerpole-imds "$R/etc/sysconfig/nftables.conf"
check "the nftables service is enabled, and checked" grep -qxF "systemctl is-enabled --quiet nftables" "$R/var/log/powerpole-stand-ins.log"
calls="$(cat "$R/var/log/powerpole-stand-ins.log")"
check "the agent is stopped first and started last" test "$(head -n1 <<<"$calls")" = "systemctl stop amazon-ssm-agent" -a "$(tail -n1 <<<"$calls")" = "systemctl start amazon-ssm-agent"
check "a MySQL client is installed" grep -qx "dnf install -y mariadb105" <<<"$calls"

if [ "$FAILS" -gt 0 ]; then
    say "FAILED: $FAILS check(s)"
    exit 1
fi
say "PASS"
