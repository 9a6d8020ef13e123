# Every default is the example deployment; the instance types and counts are the cost
# (deploy/README.md, "Terraform"). Size them from measured numbers, not from these defaults.

variable "region" {
  description = "AWS region, e.g. eu-west-1."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as eu-west-1."
  }
}

variable "name" {
  description = "Prefix of every resource's name (cluster, database, cache, bucket, roles)."
  type        = string
  default     = "couturier"

  validation {
    # ElastiCache ids stop at 40 characters, S3 names at 63: the bucket adds 23 (s3.tf).
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must be 2-20 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "tags" {
  description = "Tags added to every resource (cost allocation, owner)."
  type        = map(string)
  default     = {}
}

variable "availability_zones" {
  description = "Zones the VPC, the nodes, the database and the cache span, named rather than looked up so that a zone AWS adds later never moves anything."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]

  validation {
    # RDS Multi-AZ and ElastiCache failover need two zones; EKS needs subnets in two.
    condition = (
      length(var.availability_zones) >= 2 && length(var.availability_zones) <= 6
      && alltrue([for z in var.availability_zones : can(regex("^${var.region}[a-z]$", z))])
    )
    error_message = "availability_zones must name 2 to 6 zones of var.region, e.g. [\"eu-west-1a\", \"eu-west-1b\"]."
  }
}

variable "vpc_cidr" {
  description = "The VPC's IPv4 range, a /16 (one /20 per zone for pods and nodes, one /24 per zone for load balancers)."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be an IPv4 /16, e.g. 10.40.0.0/16."
  }
}

variable "nat_gateway_per_zone" {
  description = "One NAT gateway per zone (survives a zone outage) instead of one in all (cheaper)."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS control plane version; the manifests are validated against this minor (couturier.deploy.KUBERNETES_VERSION)."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.33."
  }
}

variable "api_public_access" {
  description = "Open the Kubernetes API to the internet, to api_public_cidrs only. Off, the API is reached from inside the VPC (VPN, bastion)."
  type        = bool
  default     = false
}

variable "api_public_cidrs" {
  description = "CIDRs allowed to reach the Kubernetes API when api_public_access is on."
  type        = list(string)
  default     = []

  validation {
    condition = (
      alltrue([for c in var.api_public_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
      && (length(var.api_public_cidrs) > 0 || !var.api_public_access)
    )
    error_message = "api_public_cidrs must be IPv4 CIDRs narrower than 0.0.0.0/0 (e.g. an office's 203.0.113.0/24), and at least one when api_public_access is on."
  }
}

variable "on_demand_nodes" {
  description = "The on-demand node group: the floor that serves the baseline (the autoscaler's min_replicas) and the system pods."
  type = object({
    instance_types = list(string)
    min            = number
    max            = number
  })
  default = { instance_types = ["c6i.xlarge"], min = 3, max = 6 }

  validation {
    condition = (
      length(var.on_demand_nodes.instance_types) > 0
      && var.on_demand_nodes.min >= 1 && var.on_demand_nodes.min <= var.on_demand_nodes.max
    )
    error_message = "on_demand_nodes needs at least one instance type and 1 <= min <= max."
  }
}

variable "spot_nodes" {
  description = "The Spot node group: the surge capacity. Several types of one size, so that one type's shortage does not stop the group."
  type = object({
    instance_types = list(string)
    min            = number
    max            = number
  })
  default = { instance_types = ["c6i.xlarge", "c6a.xlarge", "c5.xlarge", "m6i.xlarge"], min = 0, max = 12 }

  validation {
    condition = (
      length(var.spot_nodes.instance_types) > 1
      && var.spot_nodes.min >= 0 && var.spot_nodes.min <= var.spot_nodes.max
    )
    error_message = "spot_nodes needs two or more instance types (Spot capacity comes and goes by type) and 0 <= min <= max."
  }
}

variable "node_disk_gib" {
  description = "Root volume of each node (images, emptyDir homes), GiB."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_gib >= 20
    error_message = "node_disk_gib must be at least 20: the couturier image alone is several GiB."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the pods that assume the IAM role (the values file's `namespace`)."
  type        = string
  default     = "couturier"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a Kubernetes name (RFC 1123 label)."
  }
}

variable "service_account" {
  description = "Kubernetes ServiceAccount that assumes the IAM role (the values file's `name`)."
  type        = string
  default     = "couturier"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a Kubernetes name (RFC 1123 label)."
  }
}

# The two passwords come in as variables, never generated here: generate each once (`openssl
# rand -hex 32`), keep it in your secret store, and pass it to every plan (TF_VAR_...). A
# different value changes the password, and the pods' Secret must follow. Letters and digits
# only: each goes unescaped into a URL, and the Redis one into Feast's comma-separated
# connection string (couturier.features._repo.redis_connection_string).
variable "redis_auth_token" {
  description = "ElastiCache AUTH token (the password in COUTURIER_REDIS_URL): 32 to 128 letters and digits."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9]{32,128}$", var.redis_auth_token))
    error_message = "redis_auth_token must be 32 to 128 letters and digits; generate one with `openssl rand -hex 32`."
  }
}

variable "postgres_password" {
  description = "The database's master password (the one in COUTURIER_POSTGRES_DSN): 32 to 128 letters and digits."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9]{32,128}$", var.postgres_password))
    error_message = "postgres_password must be 32 to 128 letters and digits; generate one with `openssl rand -hex 32`."
  }
}

variable "redis_node_type" {
  description = "ElastiCache node type (the online feature store)."
  type        = string
  default     = "cache.m7g.large"

  validation {
    # Burstable cache.t* nodes run out of CPU credits under TLS at sustained load.
    condition = (
      can(regex("^cache\\.[a-z0-9]+\\.[a-z0-9]+$", var.redis_node_type))
      && !startswith(var.redis_node_type, "cache.t")
    )
    error_message = "redis_node_type must be a non-burstable ElastiCache type such as cache.m7g.large."
  }
}

variable "redis_replicas" {
  description = "Read replicas beside the primary, spread over the zones (failover needs one)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_replicas >= 1 && var.redis_replicas <= 5
    error_message = "redis_replicas must be between 1 and 5 (ElastiCache's limit)."
  }
}

variable "redis_engine_version" {
  description = "Redis OSS engine version."
  type        = string
  default     = "7.1"

  validation {
    condition     = can(regex("^[67]\\.[0-9]+$", var.redis_engine_version))
    error_message = "redis_engine_version must be 6.x or 7.x, e.g. 7.1."
  }
}

variable "postgres_instance_class" {
  description = "RDS instance class (MLflow's, Dagster's and Feast's registries, the review store)."
  type        = string
  default     = "db.m7g.large"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.postgres_instance_class))
    error_message = "postgres_instance_class must be an RDS class such as db.m7g.large."
  }
}

variable "postgres_version" {
  description = "PostgreSQL major version (the parameter group's family follows it)."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^1[4-9]$", var.postgres_version))
    error_message = "postgres_version must be a major version from 14 to 19, e.g. 17."
  }
}

variable "postgres_storage_gib" {
  description = "Allocated storage, GiB; storage autoscaling may grow it to four times this."
  type        = number
  default     = 50

  validation {
    condition     = var.postgres_storage_gib >= 20 && var.postgres_storage_gib <= 16384
    error_message = "postgres_storage_gib must be between 20 and 16384."
  }
}

variable "postgres_backup_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.postgres_backup_days >= 7 && var.postgres_backup_days <= 35
    error_message = "postgres_backup_days must be between 7 and 35."
  }
}

variable "log_retention_days" {
  description = "Retention of the EKS control plane and VPC flow logs, days."
  type        = number
  default     = 365

  validation {
    # The retentions CloudWatch offers, from a year up.
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention of a year or more, e.g. 365 or 731."
  }
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object's old version is kept in the bucket."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}
