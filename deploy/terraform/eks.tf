# The EKS cluster: a private API by default, every control plane log, Secrets encrypted with the
# KMS key, and two managed node groups (on-demand for the floor, Spot for surges). Nothing here
# scales the node groups: install Cluster Autoscaler or Karpenter (each needs an IRSA role of
# its own) before relying on the Spot group's max.

resource "aws_iam_role" "cluster" {
  name = "${var.name}-eks-cluster"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
    }]
  })
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

# Created here rather than by EKS, so that it is encrypted and expires.
resource "aws_cloudwatch_log_group" "cluster" {
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_eks_cluster" "this" {
  name                      = var.name
  version                   = var.kubernetes_version
  role_arn                  = aws_iam_role.cluster.arn
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

  access_config {
    # Access entries, not the aws-auth ConfigMap; whoever applies this is the first admin.
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  vpc_config {
    subnet_ids              = aws_subnet.private[*].id
    endpoint_private_access = true
    endpoint_public_access  = var.api_public_access
    public_access_cidrs     = var.api_public_access ? var.api_public_cidrs : null
  }

  encryption_config {
    resources = ["secrets"] # the Secret with COUTURIER_POSTGRES_DSN and the tokens
    provider {
      key_arn = aws_kms_key.this.arn
    }
  }

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

# IRSA: pods exchange their ServiceAccount token for an IAM role's credentials (iam.tf).
# No thumbprint: IAM trusts EKS's OIDC issuers through its own CA library.
resource "aws_iam_openid_connect_provider" "eks" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}

resource "aws_iam_role" "nodes" {
  name = "${var.name}-eks-nodes"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "nodes" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"])

  role       = aws_iam_role.nodes.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.value}"
}

resource "aws_launch_template" "nodes" {
  name_prefix = "${var.name}-nodes-"

  # IMDSv2 with one hop: a pod cannot reach the node's metadata service, so it cannot borrow
  # the node role's credentials and has only its own IRSA role.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.node_disk_gib
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }
}

locals {
  node_groups = {
    on-demand = merge(var.on_demand_nodes, { capacity_type = "ON_DEMAND" })
    spot      = merge(var.spot_nodes, { capacity_type = "SPOT" })
  }
}

# No taint on the Spot group: the rendered Deployment tolerates none, and its topology spread
# and PodDisruptionBudget already bound what a Spot reclaim takes away. EKS labels each node
# with eks.amazonaws.com/capacityType for whoever wants to select on it.
resource "aws_eks_node_group" "this" {
  for_each = local.node_groups

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.nodes.arn
  subnet_ids      = aws_subnet.private[*].id
  ami_type        = "AL2023_x86_64_STANDARD"
  capacity_type   = each.value.capacity_type
  instance_types  = each.value.instance_types

  launch_template {
    id      = aws_launch_template.nodes.id
    version = aws_launch_template.nodes.latest_version
  }

  scaling_config {
    min_size     = each.value.min
    max_size     = each.value.max
    desired_size = each.value.min
  }

  update_config {
    max_unavailable = 1
  }

  # The cluster autoscaler owns the desired size once it runs; a plan must not reset it.
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }

  depends_on = [aws_iam_role_policy_attachment.nodes]
}
