# Session logging: the KMS-encrypted log group that only the security team can read. powerpole's
# session document (session_document.tf) streams every session into it.

resource "aws_cloudwatch_log_group" "sessions" {
  name              = var.session_log_group_name
  retention_in_days = var.session_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}
