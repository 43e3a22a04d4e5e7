# One customer managed key for everything powerpole stores: the session log group, the Lambda log
# groups, the DynamoDB table, Session Manager session data and the Lambda environment.
# Its policy is policies/kms-key-policy.json.

resource "aws_kms_key" "this" {
  description             = "powerpole: session logs, Lambda logs, session table, SSM session data"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy                  = templatefile("${local.policies_dir}/kms-key-policy.json", local.key_policy_template_vars)
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}
