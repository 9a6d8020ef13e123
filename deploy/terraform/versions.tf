# One provider, pinned exactly: 5.100.0 is the version whose schema the tests validate against
# offline (tests/unit/deploy/test_terraform.py; deploy/README.md, "Terraform"). Moving to 6.x
# means validating against 6.x first. No .terraform.lock.hcl is committed: one written from a
# local mirror holds one platform's checksum only; `terraform providers lock` on a networked
# machine writes one for every platform.
terraform {
  required_version = ">= 1.9" # validations that read another variable

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "app.kubernetes.io/part-of" = var.name })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = var.availability_zones
  zones      = length(var.availability_zones)
}
