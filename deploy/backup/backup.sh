#!/usr/bin/env bash
# Back up the database to a pg_dump custom-format archive (compressed; restore.sh reads it).
#   DATABASE_URL=postgresql://... deploy/backup/backup.sh      # native (make backup)
#   deploy/backup/backup.sh --compose                          # the compose.prod.yaml stack
# Writes $BACKUP_FILE, default backups/<UTC timestamp>.dump; prints the path.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

file=${BACKUP_FILE:-backups/$(date -u +%Y%m%dT%H%M%SZ).dump}
mkdir -p "$(dirname "$file")"
umask 077  # the dump holds password hashes and customers' addresses
partial="$file.partial"
CLEANUP+=("$partial")  # a failed dump never leaves a file that looks like a backup

# An archive pg_restore cannot list is not a backup.
if [[ ${1:-} == --compose ]]; then
  compose_cmd
  # pg_dump writes to stdout inside the `backup` container; -T keeps the bytes binary-clean.
  "${COMPOSE[@]}" --profile backup run --rm -T backup >"$partial"
  "${COMPOSE[@]}" --profile backup run --rm -T backup pg_restore --list <"$partial" >/dev/null
else
  libpq_url  # LIBPQ_URL without the password; PGPASSFILE holds it
  pg_dump --format=custom --no-owner --no-acl --dbname="$LIBPQ_URL" --file="$partial"
  pg_restore --list "$partial" >/dev/null
fi
mv "$partial" "$file"
echo "$file"
