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

resource "aws_s3_bucket_server_side_encryption_configuration" "audit_export" {
  bucket = aws_s3_bucket.audit_export.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
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
