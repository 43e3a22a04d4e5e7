terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.46 is the oldest 5.x with every argument used here; 6.x is accepted too (the module uses
      # nothing 6.0 removed; `data.aws_region.name` is only deprecated there).
      version = ">= 5.46, < 7.0"
    }
  }
}
