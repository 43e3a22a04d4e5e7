# The Slack follow-up queue. On Lambda nothing may run after a response, so slack-handler answers
# Slack and puts the verified request on this queue; slack-worker (an SQS event source mapping)
# replays it and does the follow-up (store writes, approval card, DMs) once. See ARCHITECTURE.md,
# "Slack on Lambda". A message holds a Slack request body (user ids, the typed reason), so both
# queues are encrypted with the powerpole key and refuse anything but TLS.

resource "aws_sqs_queue" "follow_ups_dlq" {
  name                              = "${local.follow_up_queue_name}-dlq"
  message_retention_seconds         = 1209600 # 14 days, the most SQS keeps: time to look and redrive
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = local.tags
}

resource "aws_sqs_queue" "follow_ups" {
  name = local.follow_up_queue_name
  # AWS's advice for an SQS event source: at least six times the function's timeout.
  visibility_timeout_seconds        = 6 * var.slack_worker_timeout_seconds
  message_retention_seconds         = 86400
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = aws_kms_key.this.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = local.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.follow_ups_dlq.arn
    maxReceiveCount     = var.slack_follow_up_max_receive_count
  })
}

# Only the follow-up queue may move messages into the dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "follow_ups_dlq" {
  queue_url = aws_sqs_queue.follow_ups_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.follow_ups.arn]
  })
}

data "aws_iam_policy_document" "follow_up_queues" {
  for_each = {
    main = aws_sqs_queue.follow_ups.arn
    dlq  = aws_sqs_queue.follow_ups_dlq.arn
  }

  statement {
    sid       = "DenyAnythingButTls"
    effect    = "Deny"
    actions   = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:PurgeQueue"]
    resources = [each.value]

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
}

# The follow-up queue takes messages from the Slack handler's role only: a message is a Slack
# request the worker acts on, so nobody else in the account may put one there, whatever their
# identity policy allows. (The worker still checks each message's signature and age.)
data "aws_iam_policy_document" "follow_ups" {
  source_policy_documents = [data.aws_iam_policy_document.follow_up_queues["main"].json]

  statement {
    sid       = "OnlyTheSlackHandlerSends"
    effect    = "Deny"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.follow_ups.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [aws_iam_role.slack_handler.arn]
    }
  }

  statement {
    sid       = "SlackHandlerSends"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.follow_ups.arn]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.slack_handler.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "follow_ups" {
  queue_url = aws_sqs_queue.follow_ups.id
  policy    = data.aws_iam_policy_document.follow_ups.json
}

resource "aws_sqs_queue_policy" "follow_ups_dlq" {
  queue_url = aws_sqs_queue.follow_ups_dlq.id
  policy    = data.aws_iam_policy_document.follow_up_queues["dlq"].json
}

# Anything in the dead-letter queue is a Slack action that was acknowledged but not done.
resource "aws_cloudwatch_metric_alarm" "follow_ups_dead_lettered" {
  alarm_name          = "${local.follow_up_queue_name}-dead-lettered"
  alarm_description   = "powerpole: a Slack follow-up (a request, decision or DM) failed every delivery and waits in ${aws_sqs_queue.follow_ups_dlq.name}; see the slack-worker log, fix the cause, then redrive it."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.follow_ups_dlq.name }
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
