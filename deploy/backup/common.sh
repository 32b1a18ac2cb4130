# shellcheck shell=bash
# Shared by backup.sh and restore.sh (sourced, not run).
# Native mode acts on $DATABASE_URL with the host's pg_dump/pg_restore; --compose acts on the
# compose.prod.yaml stack through its `backup`/`restore` services ($COMPOSE_CMD overrides
# the compose command, e.g. to add `-p project`).
#
# No secret ever goes on a command line: any user can read every process's argv (`ps`,
# /proc/*/cmdline). The database password goes to libpq in a password file (mode 600,
# removed on exit) and the Redis password to redis-cli in REDISCLI_AUTH; the tools get
# URLs without them.

die() { echo "$(basename "$0"): $*" >&2; exit 2; }

# Files removed however the script ends (EXIT runs on errors too; INT/TERM are turned into
# an exit so that it also runs when the operator presses Ctrl-C or the job is killed).
CLEANUP=()
trap 'rm -f "${CLEANUP[@]}"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# %XX escapes of a URL part, decoded (libpq and redis-cli decode user info the same way).
# Backslashes are doubled first so that printf %b turns only the %XX into bytes.
percent_decode() {
  local s=${1//\\/\\\\}
  printf '%b' "${s//%/\\x}"
}

# libpq connection string from $DATABASE_URL, without its password: SQLAlchemy's
# `postgresql+psycopg://` becomes `postgresql://` (libpq knows no driver suffix); anything not
# PostgreSQL is refused. A password in the URL is written to a fresh PGPASSFILE instead.
# Sets LIBPQ_URL (not printed: a $(...) subshell could not export PGPASSFILE).
libpq_url() {
  local url=${DATABASE_URL:-}
  [[ -n $url ]] || die "set DATABASE_URL (PostgreSQL); the SQLite default is backed up by copying instance/flipkart.sqlite3"
  local scheme=${url%%://*} rest=${url#*://}
  case ${scheme%%+*} in
    postgresql | postgres) ;;
    *) die "DATABASE_URL is not PostgreSQL (scheme ${scheme})" ;;
  esac
  [[ $rest != *[?\&]password=* ]] || die "put the password in DATABASE_URL's user info (user:password@host), not in ?password="
  # User info is what comes before the first '@' of the authority (as libpq reads it).
  local authority=${rest%%/*} userinfo=''
  if [[ $authority == *@* ]]; then
    userinfo=${authority%%@*}
    rest=${rest#*@}
  fi
  local user=${userinfo%%:*}
  if [[ $userinfo == *:* ]]; then
    pgpass_file "$(percent_decode "${userinfo#*:}")"
  fi
  LIBPQ_URL="postgresql://${user:+$user@}$rest"
}

# A password file for libpq holding $1 for any host, port, database and user (the URL decides
# those); PGPASSFILE points at it. `:` and `\` are escaped as the file format requires.
pgpass_file() {
  local password=${1//\\/\\\\}
  password=${password//:/\\:}
  PGPASSFILE=$(mktemp "${TMPDIR:-/tmp}/flipkart-pgpass.XXXXXX")  # mktemp: mode 600
  CLEANUP+=("$PGPASSFILE")
  printf '*:*:*:*:%s\n' "$password" >"$PGPASSFILE"  # printf is a builtin: no argv
  export PGPASSFILE
  unset PGPASSWORD  # libpq prefers it over the file
}

# redis-cli arguments for $REDIS_URL without its user info: the password goes in REDISCLI_AUTH
# (redis-cli reads it from there), the user name in --user. Sets the REDIS_CLI array.
redis_cli() {
  local url=$REDIS_URL scheme rest userinfo='' authority
  scheme=${url%%://*}
  rest=${url#*://}
  authority=${rest%%/*}
  if [[ $authority == *@* ]]; then
    userinfo=${authority%%@*}
    rest=${rest#*@}
  fi
  REDIS_CLI=(redis-cli -u "$scheme://$rest")
  if [[ $userinfo == *:* ]]; then
    local user
    user=$(percent_decode "${userinfo%%:*}")
    [[ -z $user ]] || REDIS_CLI+=(--user "$user")
    REDISCLI_AUTH=$(percent_decode "${userinfo#*:}")
    export REDISCLI_AUTH
  elif [[ -n $userinfo ]]; then  # redis://password@host: redis-cli's reading of one field
    REDISCLI_AUTH=$(percent_decode "$userinfo")
    export REDISCLI_AUTH
  fi
}

# The compose command as an array: $COMPOSE_CMD, or the production file next to the Makefile.
# shellcheck disable=SC2034  # COMPOSE is used by the scripts that source this file
compose_cmd() {
  local root
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  read -ra COMPOSE <<<"${COMPOSE_CMD:-docker compose -f $root/compose.prod.yaml}"
}
