# Alarms on what keeps access bounded. The sweeper is what revokes access at the deadline, so it
# is watched three ways: its invocations failing (Lambda's own Errors metric), its steps failing
# (the SweeperErrors metric it writes as CloudWatch embedded-metric-format lines, src/metrics),
# and it not running at all. Teardowns still failing after teardown_alert_after and failed
# provisionings come from the same EMF lines (namespace Powerpole, dimension Deployment). The
# dead-letter queue's alarm is in sqs.tf (follow_ups_dead_lettered). Every alarm notifies
# var.alarm_actions (e.g. an SNS topic that pages), on alarm and on recovery.

locals {
  emf_namespace  = "Powerpole"
  emf_dimensions = { Deployment = var.deployment_id }
}

resource "aws_cloudwatch_metric_alarm" "sweeper_errors" {
  alarm_name          = "${local.sweeper_function_name}-errors"
  alarm_description   = "powerpole: the sweeper function failed in 3 of the last 5 minutes. Expiries and teardowns may not be happening: read the ${local.sweeper_function_name} log (JSON, level ERROR)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.sweeper.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# Missing data is breaching: a sweeper that is not invoked (rule disabled, throttled, deleted)
# revokes nothing, and says nothing.
resource "aws_cloudwatch_metric_alarm" "sweeper_not_running" {
  alarm_name          = "${local.sweeper_function_name}-not-running"
  alarm_description   = "powerpole: the sweeper function has not run for 10 minutes; nothing expires or is torn down. Check the EventBridge rule ${aws_cloudwatch_event_rule.sweeper.name} and the function's throttles."
  namespace           = "AWS/Lambda"
  metric_name         = "Invocations"
  dimensions          = { FunctionName = aws_lambda_function.sweeper.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 2
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "sweeper_step_errors" {
  alarm_name          = "${local.sweeper_function_name}-step-errors"
  alarm_description   = "powerpole: sweeper steps failed (the store could not be read, or a provisioning, warning, expiry or teardown step failed) in 3 of the last 5 minutes; read the ${local.sweeper_function_name} log."
  namespace           = local.emf_namespace
  metric_name         = "SweeperErrors"
  dimensions          = local.emf_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}

# The sweeper writes TeardownsStuck once per session whose teardown has kept failing for
# [scheduler] teardown_alert_after (the approvals channel is told at the same moment): an account
# or a bastion may outlive its deadline until someone acts.
resource "aws_cloudwatch_metric_alarm" "teardowns_stuck" {
  alarm_name          = "${var.name_prefix}-teardowns-stuck"
  alarm_description   = "powerpole: a teardown has been failing for longer than teardown_alert_after; a database account or a bastion may still exist past its deadline. `powerpole audit --session ID` names the failing step; see the approvals channel's alert."
  namespace           = local.emf_namespace
  metric_name         = "TeardownsStuck"
  dimensions          = local.emf_dimensions
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "provisioning_failures" {
  alarm_name          = "${var.name_prefix}-provisioning-failures"
  alarm_description   = "powerpole: provisioning failed and was rolled back (launch, database account, SSM agent or hand-over DM); the requester was told. The sweeper log names the cause."
  namespace           = local.emf_namespace
  metric_name         = "ProvisioningFailures"
  dimensions          = local.emf_dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
  tags                = local.tags
}
