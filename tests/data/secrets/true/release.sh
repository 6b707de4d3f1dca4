#!/usr/bin/env bash
set -euo pipefail
export GH_TOKEN="ghs_CqTY8Ur3j118YHgHLWbA1MXntDlvuoeyUOll"
gh release create "$1" dist/*
