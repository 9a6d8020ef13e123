# ElastiCache Redis: the online feature store (COUTURIER_REDIS_URL). A primary and
# `redis_replicas` replicas spread over the zones, with automatic failover; TLS and an AUTH
# token in transit, the KMS key at rest.

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "Redis: reachable from the EKS nodes and pods only"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_cluster" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from the EKS cluster security group (nodes and pods)"
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_replication_group" "redis" {
  replication_group_id = var.name
  description          = "${var.name} online feature store"
  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  num_cache_clusters   = 1 + var.redis_replicas

  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.redis.name
  security_group_ids         = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.this.arn
  transit_encryption_enabled = true
  auth_token                 = var.redis_auth_token

  # Online features can be rebuilt by materializing again; a week of snapshots saves that time.
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
  apply_immediately          = false
}
