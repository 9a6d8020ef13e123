# RDS PostgreSQL (COUTURIER_POSTGRES_DSN): MLflow's, Dagster's and Feast's registries. Multi-AZ,
# private, TLS only, encrypted with the KMS key, backed up daily, and protected from deletion:
# `terraform destroy` fails until deletion_protection is turned off by hand.

resource "aws_security_group" "postgres" {
  name        = "${var.name}-postgres"
  description = "PostgreSQL: reachable from the EKS nodes and pods only"
  vpc_id      = aws_vpc.this.id
}

resource "aws_vpc_security_group_ingress_rule" "postgres_from_cluster" {
  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from the EKS cluster security group (nodes and pods)"
  referenced_security_group_id = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_db_subnet_group" "postgres" {
  name       = var.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_db_parameter_group" "postgres" {
  name_prefix = "${var.name}-postgres${var.postgres_version}-"
  family      = "postgres${var.postgres_version}"

  parameter {
    name  = "rds.force_ssl" # refuse clients without TLS
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement" # slow queries (ms) into the exported postgresql log
    value = "500"
  }
  parameter {
    name  = "log_statement" # schema changes (migrations), not every query
    value = "ddl"
  }

  lifecycle {
    create_before_destroy = true # a new family replaces the group while the instance uses it
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name = "${var.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "postgres" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.postgres_version
  instance_class = var.postgres_instance_class
  multi_az       = true

  allocated_storage     = var.postgres_storage_gib
  max_allocated_storage = 4 * var.postgres_storage_gib
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  db_name  = "couturier"
  username = "couturier"
  password = var.postgres_password
  port     = 5432

  db_subnet_group_name                = aws_db_subnet_group.postgres.name
  vpc_security_group_ids              = [aws_security_group.postgres.id]
  publicly_accessible                 = false
  parameter_group_name                = aws_db_parameter_group.postgres.name
  iam_database_authentication_enabled = true

  backup_retention_period   = var.postgres_backup_days
  copy_tags_to_snapshot     = true
  deletion_protection       = true
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade      = true
  apply_immediately               = false
  enabled_cloudwatch_logs_exports = ["postgresql", "upgrade"]
  monitoring_interval             = 60
  monitoring_role_arn             = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled    = true
  performance_insights_kms_key_id = aws_kms_key.this.arn

  depends_on = [aws_iam_role_policy_attachment.rds_monitoring]
}
