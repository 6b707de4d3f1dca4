"""AWS: Aurora snapshots and point-in-time restore, S3 object storage policy (boto3)."""
