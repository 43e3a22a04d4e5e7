output "engineer_policy_arn" {
  description = "The engineer policy (policies/engineer.json): attach it to the people who request access, e.g. as a customer managed policy of their IAM Identity Center permission set."
  value       = aws_iam_policy.engineer.arn
}

output "session_document_name" {
  description = "powerpole's Session Manager document ([bastion] session_document in powerpole.toml); engineers name it in `aws ssm start-session --document-name`."
  value       = aws_ssm_document.session.name
}

output "serve_role_arn" {
  description = "The role for `powerpole serve` (an ECS task role, or EC2 through serve_instance_profile_name)."
  value       = aws_iam_role.serve.arn
}

output "serve_instance_profile_name" {
  description = "Instance profile holding the serve role, for `powerpole serve` on EC2."
  value       = aws_iam_instance_profile.serve.name
}

output "deployment_id" {
  description = "This deployment's id ([deployment] id; the powerpole:deployment tag on its bastions)."
  value       = var.deployment_id
}

output "ssm_guard_scp_json" {
  description = "A service control policy (policies/ssm-guard-scp.json, rendered) for the organization's management account to attach to this account: nobody runs commands, associations or EC2 Instance Connect on powerpole's bastions, and only engineer_principal_arn_patterns start sessions on them."
  value       = local.ssm_guard_scp_json
}

output "ssm_guard_boundary_arn" {
  description = "The permissions boundary policies/ssm-guard-boundary.json (null unless create_ssm_guard_boundary): attach it to roles of this account that hold broad SSM policies."
  value       = one(aws_iam_policy.ssm_guard_boundary[*].arn)
}
