#!/bin/bash
# powerpole bastion user data (Amazon Linux 2023). Access is through SSM Session Manager only,
# with powerpole's session document, which runs every session as SESSION_USER.
#
# What it makes true before anyone can open a session:
#   - SESSION_USER exists, with no password and no sudo: the person in the session cannot become
#     root, so cannot read another process's memory, the agent's files or the instance role;
#   - ssm-user (the agent's default user, which the agent creates with passwordless sudo) exists
#     without sudo, and a sudoers file read last denies both users everything, even if the agent
#     writes its own grant again later;
#   - ec2-user (the AMI's user, with passwordless sudo) gets the same: a principal tagged
#     `SSMSessionRunAs` could otherwise choose it as the session's user (the engineer policy also
#     refuses such principals);
#   - the instance metadata service (IMDSv4 and v6 addresses) answers root only: the agent runs
#     as root and needs the instance role; nobody else gets its credentials; the rule is kept
#     across a reboot by the nftables service, and if that service cannot be enabled the script
#     fails and the agent is never started (fail closed);
#   - a MySQL client is installed, and nothing else.
# The agent is stopped while this runs and started at the end, so "online in Session Manager"
# (what powerpole waits for before the hand-over) comes after the hardening.
#
# infra/tests/user_data_test.sh runs this script in a throwaway root (see there) and checks each
# of these; keep it shellcheck-clean.
set -euo pipefail

SESSION_USER=powerpole-session
IMDS_V4=169.254.169.254
IMDS_V6=fd00:ec2::254
NFT_RULES=/etc/nftables/powerpole-imds.nft
NFT_MAIN=/etc/sysconfig/nftables.conf
SUDOERS_DENY=/etc/sudoers.d/zz-powerpole-no-sudo

systemctl stop amazon-ssm-agent || true

# --- The instance metadata service: root only ----------------------------------------------------
command -v nft >/dev/null 2>&1 || dnf install -y nftables
mkdir -p "$(dirname "$NFT_RULES")" "$(dirname "$NFT_MAIN")"
cat >"$NFT_RULES" <<EOF
# powerpole: only root (the SSM agent) may reach the instance metadata service.
table inet powerpole_imds {
    chain output {
        type filter hook output priority filter; policy accept;
        ip daddr $IMDS_V4 meta skuid != 0 reject
        ip6 daddr $IMDS_V6 meta skuid != 0 reject
    }
}
EOF
nft -f "$NFT_RULES"
# Kept across a reboot by the nftables service. Fails closed: if the service cannot be enabled,
# the rule would be gone after a reboot and the metadata service open to the session user, so the
# script stops here (set -e) and the agent, stopped above, is never started: the bastion never
# comes online in Session Manager, nobody can enter it, and powerpole's provisioning times out
# and tears it down.
grep -qxF "include \"$NFT_RULES\"" "$NFT_MAIN" 2>/dev/null || echo "include \"$NFT_RULES\"" >>"$NFT_MAIN"
systemctl enable nftables
systemctl is-enabled --quiet nftables

# --- Users: the session user, and ssm-user without sudo ------------------------------------------
id -u "$SESSION_USER" >/dev/null 2>&1 ||
    useradd --create-home --shell /bin/bash --comment "powerpole session (no sudo)" "$SESSION_USER"
# Created here, the agent never creates it (with its sudo grant) itself.
id -u ssm-user >/dev/null 2>&1 ||
    useradd --create-home --shell /bin/bash --comment "SSM agent default user (no sudo)" ssm-user
for user in "$SESSION_USER" ssm-user ec2-user; do
    id -u "$user" >/dev/null 2>&1 || continue
    passwd -l "$user" >/dev/null
    for group in wheel sudo adm; do
        gpasswd -d "$user" "$group" >/dev/null 2>&1 || true
    done
done
rm -f /etc/sudoers.d/ssm-agent-users /etc/sudoers.d/90-cloud-init-users
# sudo reads /etc/sudoers.d in name order and the last matching rule wins: this file comes last.
cat >"$SUDOERS_DENY.tmp" <<EOF
# powerpole: session users never get sudo.
$SESSION_USER ALL=(ALL:ALL) !ALL
ssm-user ALL=(ALL:ALL) !ALL
ec2-user ALL=(ALL:ALL) !ALL
EOF
chmod 0440 "$SUDOERS_DENY.tmp"
visudo -cf "$SUDOERS_DENY.tmp" >/dev/null
mv "$SUDOERS_DENY.tmp" "$SUDOERS_DENY"

# --- The one tool a session needs ------------------------------------------------------------------
dnf install -y mariadb105

systemctl start amazon-ssm-agent
