# powerpole.toml for the functions: a SecureString parameter (encrypted with the powerpole key) that
# they read once per cold start (POWERPOLE_CONFIG=ssm:<name>, lambdas/common). It holds references
# to secrets, never secrets (var.powerpole_toml refuses tokens; powerpole refuses inline secrets).
# What the module knows (table, Slack secret references, bastion profile, each target's security
# group, subnet, port and admin secret) is not taken from it: config_layers.tf writes those as
# TOML fragments merged over it, so the two cannot disagree.

# The operator's powerpole.toml plus what only the module decides: this deployment's id, which the
# bastion tags and the IAM conditions (orchestrator, serve, engineer) must agree on.
locals {
  rendered_powerpole_toml = <<-EOT
    ${trimspace(var.powerpole_toml)}

    # Written by the powerpole Terraform module (var.deployment_id).
    [deployment]
    id = "${var.deployment_id}"
  EOT
}

resource "aws_ssm_parameter" "config" {
  name        = local.config_parameter_name
  description = "powerpole.toml for the powerpole Lambda functions (references to secrets only)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  tier        = "Intelligent-Tiering"
  value       = local.rendered_powerpole_toml
  tags        = local.tags

  lifecycle {
    precondition {
      condition     = !can(regex("(?m)^\\s*\\[deployment\\]", var.powerpole_toml))
      error_message = "powerpole_toml must not have a [deployment] table: the module writes it from var.deployment_id."
    }
  }
}
