# How the outputs fill the Kubernetes side (deploy/README.md, "Terraform", has the commands):
#   role_arn          -> the values file's `role_arn` (the ServiceAccount's IRSA annotation)
#   redis_url         -> the Secret's COUTURIER_REDIS_URL
#   postgres_dsn      -> the Secret's COUTURIER_POSTGRES_DSN
#   object_store_uri  -> the Secret's COUTURIER_OBJECT_STORE_URI
# COUTURIER_MLFLOW_TRACKING_URI (the MLflow server's Service) and COUTURIER_ADMIN_TOKEN are not
# infrastructure: the operator sets them. The two outputs that carry a password are sensitive:
# `terraform output` hides them; `terraform output -raw NAME` prints one on purpose.

output "cluster_name" {
  description = "aws eks update-kubeconfig --name <this>"
  value       = aws_eks_cluster.this.name
}

output "role_arn" {
  description = "The IRSA role of the couturier ServiceAccount: the values file's role_arn."
  value       = aws_iam_role.serving.arn
}

output "redis_url" {
  description = "COUTURIER_REDIS_URL: TLS (rediss://) with the AUTH token, to the primary."
  value = format(
    "rediss://:%s@%s:%d/0",
    var.redis_auth_token,
    aws_elasticache_replication_group.redis.primary_endpoint_address,
    aws_elasticache_replication_group.redis.port,
  )
  sensitive = true
}

output "postgres_dsn" {
  # sslmode=require: TLS without checking the server's certificate, which would need the RDS
  # CA bundle in the image (verify-full and sslrootcert).
  description = "COUTURIER_POSTGRES_DSN, TLS required."
  value = format(
    "postgresql://%s:%s@%s:%d/%s?sslmode=require",
    aws_db_instance.postgres.username, var.postgres_password,
    aws_db_instance.postgres.address, aws_db_instance.postgres.port, aws_db_instance.postgres.db_name,
  )
  sensitive = true
}

output "object_store_uri" {
  description = "COUTURIER_OBJECT_STORE_URI: the artifacts bucket."
  value       = "s3://${aws_s3_bucket.artifacts.bucket}"
}

output "redis_endpoint" {
  description = "The primary's host name (no secret)."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "postgres_endpoint" {
  description = "The database's host name (no secret)."
  value       = aws_db_instance.postgres.address
}
