# powerpole.toml for the functions: a SecureString parameter (encrypted with the powerpole key) that
# they read once per cold start (POWERPOLE_CONFIG=ssm:<name>, lambdas/common). It holds references
# to secrets, never secrets (var.powerpole_toml refuses tokens; powerpole refuses inline secrets).
# What the module knows (table, Slack secret references, bastion profile, each target's security
# group, subnet, port and admin secret) is not taken from it: lambda.tf sets those as
# POWERPOLE_*__* overrides, so the two cannot disagree.

resource "aws_ssm_parameter" "config" {
  name        = local.config_parameter_name
  description = "powerpole.toml for the powerpole Lambda functions (references to secrets only)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  tier        = "Intelligent-Tiering"
  value       = var.powerpole_toml
  tags        = local.tags
}
