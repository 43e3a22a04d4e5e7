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
  value       = aws_subnet.bastion[*].id
}

output "security_team_role_arn" {
  description = "Role the security team assumes to read session logs."
  value       = module.powerpole.security_team_role_arn
}

output "kms_key_arn" {
  description = "Key engineers need kms:GenerateDataKey on to start sessions."
  value       = module.powerpole.kms_key_arn
}
