# A trail nobody can rewrite (src/export/): every audit event the table stores is copied, through
# the table's stream and the export function, to a bucket with S3 Object Lock in compliance mode.
# For audit_export_retention_days nobody (the account root and powerpole's roles included) can
# delete or overwrite an exported version. The export function's role may only PutObject there,
# and writes with If-None-Match: * (a redelivered event changes nothing).

locals {
  export_function_name     = "${var.name_prefix}-export"
  export_log_group_arn     = "${local.log_group_arn_prefix}/aws/lambda/${local.export_function_name}"
  audit_export_bucket      = coalesce(var.audit_export_bucket_name, "${var.name_prefix}-audit-${local.account_id}")
  audit_export_bucket_arn  = "arn:${local.partition}:s3:::${local.audit_export_bucket}"
  export_failure_queue_arn = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${var.name_prefix}-export-failures"
}

# --- The bucket ---------------------------------------------------------------------------------

resource "aws_s3_bucket" "audit_export" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is the operator's choice (a second locked bucket in another region); the lock, not a copy, is what keeps the trail unchanged.
  #checkov:skip=CKV_AWS_18:Access logging needs a second bucket the operator chooses; CloudTrail data events on this bucket are the recommended record of who read it.
  #checkov:skip=CKV2_AWS_62:Nothing acts on new objects; event notifications would only add a principal.
  bucket              = local.audit_export_bucket
  object_lock_enabled = true
  tags                = merge(local.tags, { Name = local.audit_export_bucket })
}

resource "aws_s3_bucket_versioning" "audit_export" {
  bucket = aws_s3_bucket.audit_export.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_object_lock_configuration" "audit_export" {
  bucket = aws_s3_bucket.audit_export.id

  rule {
    default_retention {
      mode = "COMPLIANCE"
      days = var.audit_export_retention_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.audit_export]
}

# A key of the bucket's own (policies/audit-key-policy.json): nobody but
# var.audit_key_break_glass_principal_arn may disable it, schedule its deletion, turn off its
# rotation or change its policy, so an IAM administrator cannot make the locked trail unreadable.
# The policy would refuse the deploying principal its own later PutKeyPolicy (unless it is the
# break-glass principal), which AWS's lockout safety check would reject: it is bypassed on
# purpose, and a later change of this policy is applied by the break-glass principal.
resource "aws_kms_key" "audit_export" {
  description                        = "powerpole: the audit export bucket (disable, delete and policy changes by the break-glass principal only)"
  enable_key_rotation                = true
  deletion_window_in_days            = 30
  bypass_policy_lockout_safety_check = true
  policy                             = templatefile("${local.policies_dir}/audit-key-policy.json", local.key_policy_template_vars)
  tags                               = local.tags
}

resource "aws_kms_alias" "audit_export" {
  name          = "alias/${var.name_prefix}-audit"
  target_key_id = aws_kms_key.audit_export.key_id
}

resource "aws_s3_bucket_server_side_encryption_configuration" "audit_export" {
  bucket = aws_s3_bucket.audit_export.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.audit_export.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "audit_export" {
  bucket                  = aws_s3_bucket.audit_export.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "audit_export" {
  bucket = aws_s3_bucket.audit_export.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Locked versions cannot expire early; this only removes what the lock no longer holds, and
# unfinished uploads.
resource "aws_s3_bucket_lifecycle_configuration" "audit_export" {
  bucket = aws_s3_bucket.audit_export.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.audit_export]
}

# TLS only, and no delete or retention change by anyone (the lock refuses them anyway; this says
# so in the policy a reviewer reads).
data "aws_iam_policy_document" "audit_export_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.audit_export.arn, "${aws_s3_bucket.audit_export.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "NobodyDeletesOrLoosensTheLock"
    effect    = "Deny"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectRetention", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold"]
    resources = ["${aws_s3_bucket.audit_export.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }
  }
}

resource "aws_s3_bucket_policy" "audit_export" {
  bucket = aws_s3_bucket.audit_export.id
  policy = data.aws_iam_policy_document.audit_export_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.audit_export]
}

# --- The function and its role --------------------------------------------------------------------

resource "aws_iam_role" "export" {
  name                 = "${var.name_prefix}-export"
  description          = "powerpole audit export: reads the table's stream, writes new objects to the audit bucket"
  assume_role_policy   = data.aws_iam_policy_document.orchestrator_trust.json
  permissions_boundary = var.permissions_boundary_arn
  tags                 = local.tags
}

resource "aws_iam_role_policy" "export" {
  name   = "powerpole-export"
  role   = aws_iam_role.export.id
  policy = templatefile("${local.policies_dir}/export.json", local.role_policy_template_vars)
}

resource "aws_cloudwatch_log_group" "export" {
  name              = "/aws/lambda/${local.export_function_name}"
  retention_in_days = var.lambda_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_lambda_function" "export" {
  #checkov:skip=CKV_AWS_272:Zips are built from source by the operator (cargo build) and pinned by source_code_hash; AWS Signer is optional for operators who use it.
  #checkov:skip=CKV_AWS_116:Invoked by the stream's event source mapping, where a Lambda DLQ never applies; records that keep failing go to the mapping's on-failure queue.
  function_name                  = local.export_function_name
  description                    = "powerpole: copies each new audit event from the table's stream to the Object Lock bucket, once"
  role                           = aws_iam_role.export.arn
  filename                       = var.export_zip_path
  source_code_hash               = filebase64sha256(var.export_zip_path)
  handler                        = "bootstrap"
  runtime                        = "provided.al2023"
  architectures                  = [var.lambda_architecture]
  memory_size                    = 128
  timeout                        = 60
  reserved_concurrent_executions = var.export_reserved_concurrency
  kms_key_arn                    = aws_kms_key.this.arn
  tags                           = local.tags

  environment {
    variables = {
      RUST_LOG                = var.log_level
      POWERPOLE_EXPORT_BUCKET = aws_s3_bucket.audit_export.id
      # The hourly re-export (below) scans this table for audit items the bucket lacks.
      POWERPOLE_EXPORT_TABLE        = aws_dynamodb_table.sessions.name
      POWERPOLE_EXPORT_REDRIVE_FROM = "${var.audit_export_redrive_hours}h"
    }
  }

  vpc_config {
    subnet_ids         = var.lambda_subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.export, aws_iam_role_policy.export]
}

# Records the function cannot export after the retries (a malformed delivery) are kept here with
# their stream position, so none is lost silently.
resource "aws_sqs_queue" "export_failures" {
  name                              = "${var.name_prefix}-export-failures"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = local.tags
}

resource "aws_lambda_event_source_mapping" "export" {
  event_source_arn                   = aws_dynamodb_table.sessions.stream_arn
  function_name                      = aws_lambda_function.export.arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 100
  maximum_batching_window_in_seconds = 1
  bisect_batch_on_function_error     = true
  maximum_retry_attempts             = 10
  # Only inserted audit items: sessions change often and are not exported.
  filter_criteria {
    filter {
      pattern = jsonencode({ eventName = ["INSERT"], dynamodb = { NewImage = { kind = { S = ["audit"] } } } })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.export_failures.arn
    }
  }

  depends_on = [aws_iam_role_policy.export]
}

# Events the export could not write after every retry: the queue keeps only the batch's stream
# position (lost with the stream after 24 hours), so someone must look at once. The sweeper
# re-exports audit items missing from the bucket (src/export/, "redrive"), so nothing is lost while
# the cause is fixed.
resource "aws_cloudwatch_metric_alarm" "export_failures" {
  alarm_name          = "${var.name_prefix}-export-failures"
  alarm_description   = "powerpole: audit events failed export to the Object Lock bucket (${aws_sqs_queue.export_failures.name}); see the export function's log. The sweeper re-exports what the bucket lacks; check with `powerpole audit verify`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.export_failures.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# The re-export: every hour the export function is invoked with {"action": "redrive"} and writes
# every audit item of the last audit_export_redrive_hours that the bucket lacks (If-None-Match: *,
# so what is there is left alone). Events that failed export (the alarm above) are thereby written
# once the cause is fixed, long after the stream has forgotten them.
resource "aws_cloudwatch_event_rule" "export_redrive" {
  name                = "${var.name_prefix}-export-redrive"
  description         = "powerpole: re-export audit items the Object Lock bucket lacks"
  schedule_expression = "rate(1 hour)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "export_redrive" {
  rule  = aws_cloudwatch_event_rule.export_redrive.name
  arn   = aws_lambda_function.export.arn
  input = jsonencode({ action = "redrive" })
}

resource "aws_lambda_permission" "export_redrive" {
  statement_id  = "AllowHourlyRedrive"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.export.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.export_redrive.arn
}
