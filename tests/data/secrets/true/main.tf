provider "aws" {
  region     = "eu-west-1"
  access_key = "AKIAFKIEQY2O4UVRIZNQ"
  secret_key = "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"
}

resource "aws_db_instance" "main" {
  engine         = "postgres"
  instance_class = "db.r6g.large"
  username       = "app"
  password       = "w4ScPv3z3zr_XRUekNTg"
}
