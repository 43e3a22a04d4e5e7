terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.46 is the oldest 5.x with every argument used here; 6.x is not supported yet.
      version = "~> 5.46"
    }
  }
}
