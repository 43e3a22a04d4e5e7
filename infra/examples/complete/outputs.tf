output "slack_request_urls" {
  description = "Paste these into the Slack app configuration (see infra/README.md)."
  value       = module.powerpole.slack_request_urls
}

output "table_name" {
  description = "[store] table for powerpole.toml."
  value       = module.powerpole.table_name
}

output "bastion_instance_profile_name" {
  description = "[bastion] instance_profile for powerpole.toml."
  value       = module.powerpole.bastion_instance_profile_name
}

output "bastion_security_group_ids" {
  description = "[targets.NAME] security_group_id for powerpole.toml."
  value       = module.powerpole.bastion_security_group_ids
}

output "bastion_subnet_ids" {
  description = "Candidates for [targets.NAME] subnet_id in powerpole.toml."
  value       = local.bastion_subnet_ids
}

output "security_team_role_arn" {
  description = "Role the security team assumes to read session logs."
  value       = module.powerpole.security_team_role_arn
}

output "kms_key_arn" {
  description = "Key engineers need kms:GenerateDataKey on to start sessions."
  value       = module.powerpole.kms_key_arn
}

output "function_url" {
  description = "The Slack handler's function URL (`powerpole slack manifest --base-url`)."
  value       = module.powerpole.function_url
}

output "lambda_environment" {
  description = "The functions' environment: export it to run `powerpole config check` and `powerpole doctor` as the functions read their configuration."
  value       = module.powerpole.lambda_environment
}

output "config_parameter_name" {
  description = "The Parameter Store parameter holding powerpole.toml."
  value       = module.powerpole.config_parameter_name
}

output "engineer_policy_arn" {
  description = "Attach to the people who request access (their permission set or role)."
  value       = module.powerpole.engineer_policy_arn
}

output "session_document_name" {
  description = "powerpole's Session Manager document."
  value       = module.powerpole.session_document_name
}

output "deployment_id" {
  description = "This installation's id ([deployment] id)."
  value       = module.powerpole.deployment_id
}

output "audit_export_bucket_name" {
  description = "The Object Lock bucket of the exported audit trail (`powerpole audit verify --bucket`)."
  value       = module.powerpole.audit_export_bucket_name
}

output "ssm_guard_scp_json" {
  description = "The service control policy for the organization's management account (infra/README.md, Other ways onto a bastion)."
  value       = module.powerpole.ssm_guard_scp_json
}
