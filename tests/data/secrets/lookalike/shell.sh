#!/bin/sh
read -rs -p "Password: " PASSWORD
export PGPASSWORD="$PASSWORD"
psql "postgresql://app@db.internal/app" -c 'select 1'
TOKEN=$(vault kv get -field=token secret/ci)
