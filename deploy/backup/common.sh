# shellcheck shell=bash
# Shared by backup.sh and restore.sh (sourced, not run).
# Native mode acts on $DATABASE_URL with the host's pg_dump/pg_restore; --compose acts on the
# compose.prod.yaml stack through its `backup`/`restore` services ($COMPOSE_CMD overrides
# the compose command, e.g. to add `-p project`).

die() { echo "$(basename "$0"): $*" >&2; exit 2; }

# libpq connection string from $DATABASE_URL: SQLAlchemy's `postgresql+psycopg://` becomes
# `postgresql://` (libpq knows no driver suffix); anything not PostgreSQL is refused.
libpq_url() {
  local url=${DATABASE_URL:-}
  [[ -n $url ]] || die "set DATABASE_URL (PostgreSQL); the SQLite default is backed up by copying instance/flipkart.sqlite3"
  local scheme=${url%%://*} rest=${url#*://}
  case ${scheme%%+*} in
    postgresql | postgres) printf 'postgresql://%s' "$rest" ;;
    *) die "DATABASE_URL is not PostgreSQL (scheme ${scheme})" ;;
  esac
}

# The compose command as an array: $COMPOSE_CMD, or the production file next to the Makefile.
# shellcheck disable=SC2034  # COMPOSE is used by the scripts that source this file
compose_cmd() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  read -ra COMPOSE <<<"${COMPOSE_CMD:-docker compose -f $root/compose.prod.yaml}"
}
