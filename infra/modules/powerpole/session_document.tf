# powerpole's own Session Manager document. Engineers must name it (`aws ssm start-session
# --document-name ...`; the engineer policy allows no other), so its settings apply to powerpole's
# sessions only. The account-wide SSM-SessionManagerRunShell document is not managed here: it
# holds every other team's preferences, and destroying this module must not delete them.
#
# Sessions run as an unprivileged local user that the bastion's user data creates
# (src/bastion/user-data.sh); until it exists, the agent refuses sessions.

locals {
  # Must equal SESSION_USER in src/bastion/user-data.sh (infra/tests/check_hcl.py checks it).
  session_run_as_user   = "powerpole-session"
  session_document_name = "${var.name_prefix}-session"
  session_document_arn  = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:document/${local.session_document_name}"
}

resource "aws_ssm_document" "session" {
  name            = local.session_document_name
  document_type   = "Session"
  document_format = "JSON"
  tags            = local.tags

  content = jsonencode({
    schemaVersion = "1.0"
    description   = "powerpole: shell on a powerpole bastion, streamed to the KMS-encrypted session log group, run as an unprivileged user"
    sessionType   = "Standard_Stream"
    inputs = {
      s3BucketName                = ""
      s3KeyPrefix                 = ""
      s3EncryptionEnabled         = true
      cloudWatchLogGroupName      = aws_cloudwatch_log_group.sessions.name
      cloudWatchEncryptionEnabled = true
      cloudWatchStreamingEnabled  = true
      kmsKeyId                    = aws_kms_key.this.key_id
      runAsEnabled                = true
      runAsDefaultUser            = local.session_run_as_user
      idleSessionTimeout          = tostring(var.idle_session_timeout_minutes)
      maxSessionDuration          = tostring(var.max_session_duration_minutes)
      shellProfile = {
        windows = ""
        linux   = var.session_shell_profile
      }
    }
  })
}
