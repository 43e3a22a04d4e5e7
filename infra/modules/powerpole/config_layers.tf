# What the module knows, as TOML fragments the Lambda functions merge over powerpole.toml
# (lambdas/common: POWERPOLE_CONFIG_LAYERS=ssm:<path>, read with one GetParametersByPath). One
# common fragment and one per target, each its own standard-tier SecureString (4 KB each, so no
# number of targets reaches a limit; a single parameter holds at most 8 KB). Values are
# jsonencode()d, which is valid TOML for these strings.

locals {
  config_layers_path = "${local.config_parameter_name}.d"

  config_layer_common = <<-EOT
    # Written by the powerpole Terraform module.
    [store]
    table = ${jsonencode(aws_dynamodb_table.sessions.name)}

    [slack]
    mode = "http"
    signing_secret = { secrets_manager = ${jsonencode(var.slack_secret_arn)}, key = ${jsonencode(var.slack_secret_keys.signing_secret)} }
    bot_token = { secrets_manager = ${jsonencode(var.slack_secret_arn)}, key = ${jsonencode(var.slack_secret_keys.bot_token)} }

    [bastion]
    instance_profile = ${jsonencode(aws_iam_instance_profile.bastion.name)}
    instance_type = ${jsonencode(var.bastion_instance_types[0])}
    ami_parameter = ${jsonencode(var.bastion_ami_parameter)}
  EOT

  # One line per field (not a heredoc inside the for expression, which checkov cannot evaluate).
  config_layer_targets = {
    for name, target in var.targets : "target-${name}" => join("\n", [
      "# Written by the powerpole Terraform module (var.targets[\"${name}\"]).",
      "[targets.${name}]",
      "admin_secret = ${jsonencode(target.admin_secret_arn)}",
      "port = ${target.db_port}",
      "security_group_id = ${jsonencode(aws_security_group.bastion[name].id)}",
      "subnet_id = ${jsonencode(coalesce(target.bastion_subnet_id, var.bastion_subnet_ids[0]))}",
      "",
    ])
  }

  config_layers = merge({ "common" = local.config_layer_common }, local.config_layer_targets)
}

resource "aws_ssm_parameter" "config_layer" {
  for_each = local.config_layers

  name        = "${local.config_layers_path}/${each.key}"
  description = "powerpole: a configuration fragment written by the Terraform module (references to secrets only)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn
  value       = each.value
  tags        = local.tags
}
