# The session and audit table. Its shape is defined once, in src/store/schema.rs
# (`powerpole table schema` prints it); infra/tests/check_table_schema.py fails if this drifts.

resource "aws_dynamodb_table" "sessions" {
  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = true
  # New items only, for the audit export (export.tf).
  stream_enabled   = true
  stream_view_type = "NEW_IMAGE"

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "due_shard"
    type = "S"
  }

  attribute {
    name = "next_action_at"
    type = "N"
  }

  attribute {
    name = "requester_key"
    type = "S"
  }

  attribute {
    name = "target_key"
    type = "S"
  }

  attribute {
    name = "created_at"
    type = "S"
  }

  # Sparse: only live sessions carry due_shard / next_action_at.
  global_secondary_index {
    name            = "due"
    hash_key        = "due_shard"
    range_key       = "next_action_at"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "by_requester"
    hash_key        = "requester_key"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  global_secondary_index {
    name            = "by_target"
    hash_key        = "target_key"
    range_key       = "created_at"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = merge(local.tags, { Name = var.table_name })
}
