variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "slack_secret_name" {
  description = "Name of the existing Secrets Manager secret with the Slack signing secret and bot token (JSON keys signing_secret and bot_token)."
  type        = string
  default     = "powerpole/slack"

  validation {
    condition     = length(var.slack_secret_name) > 0
    error_message = "slack_secret_name must not be empty."
  }
}

variable "billing_admin_secret_name" {
  description = "Name of the existing Secrets Manager secret with the admin credential of the example target database."
  type        = string
  default     = "powerpole/targets/billing/admin"

  validation {
    condition     = length(var.billing_admin_secret_name) > 0
    error_message = "billing_admin_secret_name must not be empty."
  }
}

variable "security_team_principal_arns" {
  description = "Principals allowed to assume the read-only session-log role, e.g. the security team's SSO role."
  type        = list(string)

  validation {
    condition     = length(var.security_team_principal_arns) > 0
    error_message = "Name at least one security team principal."
  }
}

variable "powerpole_toml_path" {
  description = "The powerpole.toml the functions run with (start from powerpole.toml.example in this directory)."
  type        = string
  default     = "powerpole.toml"

  validation {
    condition     = endswith(var.powerpole_toml_path, ".toml")
    error_message = "powerpole_toml_path must name a .toml file."
  }
}

variable "lambda_zip_dir" {
  description = "Directory holding slack-handler/bootstrap.zip, slack-worker/bootstrap.zip and sweeper/bootstrap.zip (see infra/README.md, Build the Lambda zips)."
  type        = string
  default     = "../../../target/lambda"

  validation {
    condition     = length(var.lambda_zip_dir) > 0
    error_message = "lambda_zip_dir must not be empty."
  }
}
