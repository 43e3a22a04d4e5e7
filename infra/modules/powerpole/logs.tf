# Session logging: the KMS-encrypted log group that only the security team can read, and the
# account's Session Manager preferences that make every session stream into it.

resource "aws_cloudwatch_log_group" "sessions" {
  name              = var.session_log_group_name
  retention_in_days = var.session_log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

# Session Manager reads its preferences from this one document per account and region. If it
# already exists (the console creates it on first use), import it before applying:
#   terraform import module.powerpole.aws_ssm_document.session_preferences SSM-SessionManagerRunShell
resource "aws_ssm_document" "session_preferences" {
  name            = "SSM-SessionManagerRunShell"
  document_type   = "Session"
  document_format = "JSON"
  tags            = local.tags

  content = jsonencode({
    schemaVersion = "1.0"
    description   = "Session Manager preferences (managed by powerpole): CloudWatch Logs, KMS, timeouts"
    sessionType   = "Standard_Stream"
    inputs = {
      s3BucketName                = ""
      s3KeyPrefix                 = ""
      s3EncryptionEnabled         = true
      cloudWatchLogGroupName      = aws_cloudwatch_log_group.sessions.name
      cloudWatchEncryptionEnabled = true
      cloudWatchStreamingEnabled  = true
      kmsKeyId                    = aws_kms_key.this.key_id
      runAsEnabled                = false
      runAsDefaultUser            = ""
      idleSessionTimeout          = tostring(var.idle_session_timeout_minutes)
      maxSessionDuration          = tostring(var.max_session_duration_minutes)
      shellProfile = {
        windows = ""
        linux   = var.session_shell_profile
      }
    }
  })
}
