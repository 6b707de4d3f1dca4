#!/usr/bin/env bash
# System packages the tests need, from Debian's archive. Idempotent; quiet when all are present.
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v pgbackrest >/dev/null || need+=(pgbackrest)
command -v promtool >/dev/null || need+=(prometheus)  # promtool check rules, and a real Prometheus in the export tests
command -v amtool >/dev/null || need+=(prometheus-alertmanager)  # amtool check-config
[ -x /usr/bin/chromium ] || need+=(chromium)  # the web UI's browser tests (Playwright drives Debian's Chromium; no browser download)
[ -x /usr/sbin/apache2 ] || need+=(apache2)  # the WAF suite's tests: Apache with ModSecurity 2 and the Core Rule Set
[ -f /usr/lib/apache2/modules/mod_security2.so ] || need+=(libapache2-mod-security2)
[ -d /usr/share/modsecurity-crs/rules ] || need+=(modsecurity-crs)
[ -x /usr/sbin/nginx ] || need+=(nginx)  # the rate-limit check's tests (limit_req)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "installing system packages: ${need[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
