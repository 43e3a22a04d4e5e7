# Other ways onto a bastion than a powerpole session (infra/README.md, "Other ways onto a
# bastion"). engineer.json denies them to the people who hold it; these two documents deny them to
# everyone else:
#   - policies/ssm-guard-scp.json, a service control policy for AWS Organizations (the module
#     cannot attach it: the organization's management account does), rendered as the output
#     ssm_guard_scp_json;
#   - policies/ssm-guard-boundary.json, the same denies as a permissions boundary for roles of
#     this account that hold broad SSM policies, created when create_ssm_guard_boundary is true
#     (output ssm_guard_boundary_arn).

resource "aws_iam_policy" "ssm_guard_boundary" {
  count = var.create_ssm_guard_boundary ? 1 : 0

  name        = "${var.name_prefix}-ssm-guard-boundary"
  description = "powerpole: permissions boundary that keeps Run Command, State Manager, EC2 Instance Connect and other principals' sessions off powerpole's bastions"
  policy      = templatefile("${local.policies_dir}/ssm-guard-boundary.json", local.role_policy_template_vars)
  tags        = local.tags
}

locals {
  ssm_guard_scp_json = templatefile("${local.policies_dir}/ssm-guard-scp.json", local.role_policy_template_vars)
}
