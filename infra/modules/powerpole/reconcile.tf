# Reconcile on a schedule: a second EventBridge rule invokes the sweeper function with the
# constant input {"action": "reconcile"} (lambdas/sweeper), which reconciles this deployment only
# (`[deployment] id`, which config.tf writes into the stored powerpole.toml) and posts what it removed in the approvals channel.
# Retries and event age come from aws_lambda_function_event_invoke_config.sweeper (none, 60 s):
# a missed run is redone by the next one. Two runs overlapping is harmless: each removal is
# claimed in the table first, and terminate and drop are idempotent.

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${var.name_prefix}-reconcile"
  description         = "powerpole: reconcile deployment ${var.deployment_id} (remove bastions and accounts no live session owns)"
  schedule_expression = var.reconcile_schedule_expression
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule  = aws_cloudwatch_event_rule.reconcile.name
  arn   = aws_lambda_function.sweeper.arn
  input = jsonencode({ action = "reconcile" })

  retry_policy {
    maximum_retry_attempts       = 0
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "sweeper_reconcile" {
  statement_id  = "AllowPowerpoleReconcile"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.sweeper.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconcile.arn
}
