locals {
  slack_base_url = trimsuffix(aws_lambda_function_url.slack_handler.function_url, "/")
}

output "slack_request_urls" {
  description = "URLs to enter in the Slack app: slash command Request URL, Interactivity Request URL, Event Subscriptions Request URL."
  value = {
    commands     = "${local.slack_base_url}/slack/commands"
    interactions = "${local.slack_base_url}/slack/interactions"
    events       = "${local.slack_base_url}/slack/events"
  }
}

output "function_url" {
  description = "The Slack handler's function URL."
  value       = aws_lambda_function_url.slack_handler.function_url
}

output "table_name" {
  description = "DynamoDB table ([store] table in powerpole.toml)."
  value       = aws_dynamodb_table.sessions.name
}

output "table_arn" {
  description = "DynamoDB table ARN."
  value       = aws_dynamodb_table.sessions.arn
}

output "kms_key_arn" {
  description = "The powerpole KMS key. Engineers who start sessions need kms:GenerateDataKey on it (see infra/README.md)."
  value       = aws_kms_key.this.arn
}

output "session_log_group_name" {
  description = "CloudWatch Logs group with the Session Manager session logs."
  value       = aws_cloudwatch_log_group.sessions.name
}

output "bastion_security_group_ids" {
  description = "Per target: the bastion security group ([targets.NAME] security_group_id in powerpole.toml)."
  value       = { for name, sg in aws_security_group.bastion : name => sg.id }
}

output "bastion_instance_profile_name" {
  description = "Instance profile for bastions ([bastion] instance_profile in powerpole.toml)."
  value       = aws_iam_instance_profile.bastion.name
}

output "orchestrator_role_arn" {
  description = "Role of the Lambda functions (and of `powerpole serve` if you run it instead)."
  value       = aws_iam_role.orchestrator.arn
}

output "security_team_role_arn" {
  description = "Read-only role on the session logs, for the security team."
  value       = aws_iam_role.security_team.arn
}

output "lambda_security_group_id" {
  description = "Security group of the Lambda functions."
  value       = aws_security_group.lambda.id
}

output "endpoint_security_group_id" {
  description = "Security group of the interface VPC endpoints."
  value       = aws_security_group.endpoints.id
}

output "function_names" {
  description = "Names of the four Lambda functions."
  value = {
    slack_handler = aws_lambda_function.slack_handler.function_name
    slack_worker  = aws_lambda_function.slack_worker.function_name
    sweeper       = aws_lambda_function.sweeper.function_name
    export        = aws_lambda_function.export.function_name
  }
}

output "lambda_environment" {
  description = "Environment passed to every function (no secret values: secrets are referenced by ARN); the Slack handler also gets POWERPOLE_FOLLOW_UP_QUEUE_URL."
  value       = local.lambda_environment
}

output "config_parameter_name" {
  description = "The Parameter Store parameter holding powerpole.toml (POWERPOLE_CONFIG=ssm:<name>)."
  value       = aws_ssm_parameter.config.name
}

output "follow_up_queue_url" {
  description = "The SQS queue of Slack follow-ups (slack-handler sends, slack-worker consumes)."
  value       = aws_sqs_queue.follow_ups.url
}

output "follow_up_dead_letter_queue_url" {
  description = "Slack follow-ups that failed every delivery; the alarm follow_ups_dead_lettered watches it."
  value       = aws_sqs_queue.follow_ups_dlq.url
}

output "audit_export_bucket_name" {
  description = "The Object Lock bucket holding the exported audit trail (`powerpole audit verify --bucket`)."
  value       = aws_s3_bucket.audit_export.id
}

output "audit_kms_key_arn" {
  description = "The audit bucket's own KMS key (disable, deletion and policy changes by audit_key_break_glass_principal_arn only)."
  value       = aws_kms_key.audit_export.arn
}
