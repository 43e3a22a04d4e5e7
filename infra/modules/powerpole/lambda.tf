# Three of the four Lambda entry points (lambdas/ in this repository): the Slack handler behind a
# function URL, the Slack worker on the follow-up queue (sqs.tf), and the sweeper on an
# EventBridge schedule (the fourth, the audit export, is in export.tf). Each runs as its own role
# (iam.tf: slack_handler, slack_worker, and the orchestrator role for the sweeper); all inside the
# VPC (the worker and the sweeper open admin connections to the databases), with KMS-encrypted
# environment and logs.
#
# Configuration: powerpole.toml is the SecureString parameter of config.tf (POWERPOLE_CONFIG), and
# everything this module knows (table, Slack secret references, bastion profile, each target's
# security group, subnet, port and admin secret) is in the TOML fragments of config_layers.tf
# (POWERPOLE_CONFIG_LAYERS, one parameter per target), merged over it. So the environment is the
# same few variables whatever the number of targets (Lambda's limit is 4 KB for all of them).
# POWERPOLE_CONFIG_SHA256 changes with the file or any fragment, so a new configuration reaches
# every function at once (a changed environment starts fresh execution environments).

locals {
  lambda_environment = merge(
    {
      RUST_LOG                = var.log_level
      POWERPOLE_CONFIG        = "ssm:${aws_ssm_parameter.config.name}"
      POWERPOLE_CONFIG_LAYERS = "ssm:${local.config_layers_path}"
      POWERPOLE_CONFIG_SHA256 = sha256(jsonencode([local.rendered_powerpole_toml, local.config_layers]))
    },
    var.lambda_environment,
    # Interface endpoints without private DNS (network.tf): the SDK is pointed at them by name.
    local.lambda_endpoint_environment,
  )
}

# --- Log groups (created before the functions so that retention and encryption apply) -----------

resource "aws_cloudwatch_log_group" "slack_handler" {
  name              = "/aws/lambda/${local.slack_handler_function_name}"
  retention_in_days = var.lambda_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "slack_worker" {
  name              = "/aws/lambda/${local.slack_worker_function_name}"
  retention_in_days = var.lambda_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_cloudwatch_log_group" "sweeper" {
  name              = "/aws/lambda/${local.sweeper_function_name}"
  retention_in_days = var.lambda_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

# --- Slack handler -------------------------------------------------------------------------------

resource "aws_lambda_function" "slack_handler" {
  #checkov:skip=CKV_AWS_272:Zips are built from source by the operator (cargo build) and pinned by source_code_hash; AWS Signer is optional for operators who use it.
  #checkov:skip=CKV_AWS_116:Invoked synchronously only (function URL), where a Lambda DLQ never applies; the follow-ups it queues have their own dead-letter queue (sqs.tf).
  function_name                  = local.slack_handler_function_name
  description                    = "powerpole: answers Slack commands, interactions and events (function URL) and queues their follow-ups"
  role                           = aws_iam_role.slack_handler.arn
  filename                       = var.slack_handler_zip_path
  source_code_hash               = filebase64sha256(var.slack_handler_zip_path)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.lambda_architecture]
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.slack_handler_timeout_seconds
  reserved_concurrent_executions = var.slack_handler_reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  tags                           = local.tags

  environment {
    variables = merge(local.lambda_environment, {
      POWERPOLE_FOLLOW_UP_QUEUE_URL = aws_sqs_queue.follow_ups.url
    })
  }

  vpc_config {
    subnet_ids         = var.lambda_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  tracing_config {
    mode = "Active"
  }

  # The function writes JSON lines itself (lambdas/common); JSON here makes Lambda's own
  # START/END/REPORT lines JSON too, so one log query reads both.
  logging_config {
    log_format = "JSON"
  }

  depends_on = [aws_cloudwatch_log_group.slack_handler, aws_iam_role_policy.slack_handler]
}

# Slack cannot sign requests with SigV4, so the URL is public; every request is authenticated by
# the handler with Slack's signing secret (HMAC-SHA256 over the body, 5-minute timestamp window).
# With authorization NONE the provider adds the `lambda:InvokeFunctionUrl` permission itself.
resource "aws_lambda_function_url" "slack_handler" {
  #checkov:skip=CKV_AWS_258:Slack cannot sign with SigV4; the handler verifies Slack's request signature on every request.
  function_name      = aws_lambda_function.slack_handler.function_name
  authorization_type = "NONE"
  invoke_mode        = "BUFFERED"
}

# Since October 2025 a function URL also needs `lambda:InvokeFunction`, limited to calls through
# the URL by the condition lambda:InvokedViaFunctionUrl. AWS provider 5.x cannot express that
# condition (`invoked_via_function_url` arrived in 6.29), so it is one CloudFormation resource.
# With provider >= 6.29, replace this stack by an aws_lambda_permission with
# invoked_via_function_url = true.
resource "aws_cloudformation_stack" "slack_handler_url_invoke" {
  #checkov:skip=CKV_AWS_124:A one-resource stack holding a Lambda permission; Terraform is the change log, no SNS topic is needed.
  name = "${var.name_prefix}-slack-handler-url-invoke"
  tags = local.tags

  template_body = jsonencode({
    AWSTemplateFormatVersion = "2010-09-09"
    Description              = "powerpole: allow lambda:InvokeFunction only through the function URL"
    Resources = {
      InvokeThroughFunctionUrlOnly = {
        Type = "AWS::Lambda::Permission"
        Properties = {
          Action                = "lambda:InvokeFunction"
          FunctionName          = aws_lambda_function.slack_handler.function_name
          Principal             = "*"
          InvokedViaFunctionUrl = true
        }
      }
    }
  })

  depends_on = [aws_lambda_function_url.slack_handler]
}

# --- Slack worker: the follow-ups, from the queue ---------------------------------------------------

resource "aws_lambda_function" "slack_worker" {
  #checkov:skip=CKV_AWS_272:Zips are built from source by the operator (cargo build) and pinned by source_code_hash; AWS Signer is optional for operators who use it.
  #checkov:skip=CKV_AWS_116:Invoked synchronously by the SQS event source mapping, where a Lambda DLQ never applies; failed messages go to the queue's dead-letter queue (sqs.tf).
  function_name                  = local.slack_worker_function_name
  description                    = "powerpole: runs the follow-up of each queued Slack request once (store, approval card, DMs)"
  role                           = aws_iam_role.slack_worker.arn
  filename                       = var.slack_worker_zip_path
  source_code_hash               = filebase64sha256(var.slack_worker_zip_path)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.lambda_architecture]
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.slack_worker_timeout_seconds
  reserved_concurrent_executions = var.slack_worker_reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  tags                           = local.tags

  environment {
    variables = local.lambda_environment
  }

  vpc_config {
    subnet_ids         = var.lambda_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  tracing_config {
    mode = "Active"
  }

  # The function writes JSON lines itself (lambdas/common); JSON here makes Lambda's own
  # START/END/REPORT lines JSON too, so one log query reads both.
  logging_config {
    log_format = "JSON"
  }

  depends_on = [aws_cloudwatch_log_group.slack_worker, aws_iam_role_policy.slack_worker]
}

# One message per invocation (a follow-up is a few Slack and DynamoDB calls; latency matters more
# than batching), failed messages reported individually, concurrency capped at the reservation.
resource "aws_lambda_event_source_mapping" "slack_follow_ups" {
  event_source_arn        = aws_sqs_queue.follow_ups.arn
  function_name           = aws_lambda_function.slack_worker.arn
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = var.slack_worker_reserved_concurrency >= 2 ? [var.slack_worker_reserved_concurrency] : []
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  depends_on = [aws_iam_role_policy.orchestrator]
}

# --- Sweeper -------------------------------------------------------------------------------------

resource "aws_lambda_function" "sweeper" {
  #checkov:skip=CKV_AWS_272:Zips are built from source by the operator (cargo build) and pinned by source_code_hash; AWS Signer is optional for operators who use it.
  #checkov:skip=CKV_AWS_116:No DLQ: a tick carries no data; a failed tick is redone by the next one a minute later (retries are off on purpose).
  function_name                  = local.sweeper_function_name
  description                    = "powerpole: one scheduler tick (pending timeouts, provisioning, warnings, expiries, teardown retries)"
  role                           = aws_iam_role.orchestrator.arn
  filename                       = var.sweeper_zip_path
  source_code_hash               = filebase64sha256(var.sweeper_zip_path)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.lambda_architecture]
  memory_size                    = var.lambda_memory_mb
  timeout                        = var.sweeper_timeout_seconds
  reserved_concurrent_executions = var.sweeper_reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  tags                           = local.tags

  environment {
    variables = local.lambda_environment
  }

  vpc_config {
    subnet_ids         = var.lambda_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  tracing_config {
    mode = "Active"
  }

  # The function writes JSON lines itself (lambdas/common); JSON here makes Lambda's own
  # START/END/REPORT lines JSON too, so one log query reads both.
  logging_config {
    log_format = "JSON"
  }

  depends_on = [aws_cloudwatch_log_group.sweeper, aws_iam_role_policy.orchestrator]
}

# A stale tick is worthless: the next one comes a minute later.
resource "aws_lambda_function_event_invoke_config" "sweeper" {
  function_name                = aws_lambda_function.sweeper.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}

resource "aws_cloudwatch_event_rule" "sweeper" {
  name                = "${var.name_prefix}-sweeper"
  description         = "powerpole: run one scheduler tick"
  schedule_expression = var.sweeper_schedule_expression
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "sweeper" {
  rule = aws_cloudwatch_event_rule.sweeper.name
  arn  = aws_lambda_function.sweeper.arn

  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "sweeper_schedule" {
  statement_id  = "AllowPowerpoleSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.sweeper.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweeper.arn
}
