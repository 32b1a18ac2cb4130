#!/usr/bin/env bash
# Restore a backup.sh archive, replacing every object it holds (pg_restore --clean
# --if-exists, one transaction: on any error nothing changes). The target may be empty,
# freshly migrated or in use; tables the dump does not know are left alone. Then the
# Redis cache is emptied, so no replica serves data from before the restore.
#   BACKUP_FILE=backups/x.dump DATABASE_URL=postgresql://... deploy/backup/restore.sh
#   BACKUP_FILE=backups/x.dump deploy/backup/restore.sh --compose
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/common.sh"

file=${BACKUP_FILE:-}
[[ -n $file ]] || die "set BACKUP_FILE to the archive to restore (restoring replaces data)"
[[ -s $file ]] || die "$file is missing or empty"

if [[ ${1:-} == --compose ]]; then
  compose_cmd
  "${COMPOSE[@]}" --profile backup run --rm -T restore <"$file"
  flushed=$("${COMPOSE[@]}" exec -T redis redis-cli FLUSHDB)
else
  libpq_url  # LIBPQ_URL without the password; PGPASSFILE holds it
  if [[ -n ${REDIS_URL:-} ]]; then
    command -v redis-cli >/dev/null || die "REDIS_URL is set: redis-cli is needed to empty the cache"
    redis_cli  # REDIS_CLI without the password; REDISCLI_AUTH holds it
  fi
  pg_restore --clean --if-exists --no-owner --no-acl --single-transaction --exit-on-error \
    --dbname="$LIBPQ_URL" "$file"
  if [[ -n ${REDIS_URL:-} ]]; then
    flushed=$("${REDIS_CLI[@]}" FLUSHDB)
  fi
fi
# redis-cli exits 0 on an error reply (NOAUTH, a wrong password): only OK means emptied.
if [[ ${flushed-OK} != OK ]]; then
  die "restored $file, but emptying the cache failed (${flushed:-no reply}): replicas may serve data from before the restore until it is emptied (redis-cli FLUSHDB)"
fi
echo "restored $file"
