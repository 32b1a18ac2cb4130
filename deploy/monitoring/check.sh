#!/usr/bin/env bash
# What promtool and amtool cannot see (make test-rules runs this after them):
#  1. prometheus-swarm.yml and prometheus-test.yml are prometheus.yml with the values their
#     headers name changed, and nothing else: a job added to one is in all three.
#  2. Every alert has a promtool test in which it fires (an `exp_alerts:` list, not `[]`).
#  3. Every alert's runbook annotation is deploy/monitoring/RUNBOOK.md#alert-<name in lower
#     case>, and RUNBOOK.md has the heading "### Alert: <name>" that makes that anchor.
#  4. Every alert's severity is page or ticket, and alertmanager.yml routes each of them
#     (and a missing one) to its receiver.
set -euo pipefail
cd "$(dirname "$0")"
status=0
fail() { echo "deploy/monitoring/check.sh: $*" >&2; status=1; }

body() { sed '1,/^global:/{/^global:/!d}' "$1"; }  # the file without its header comment
variant() {  # variant <file> <sed script that turns prometheus.yml into it>
  diff -u --label "prometheus.yml, then: $2" --label "$1" \
    <(body prometheus.yml | sed "$2") <(body "$1") >&2 ||
    fail "$1 differs from prometheus.yml beyond: $2"
}
variant prometheus-swarm.yml \
  's/names: \["\(web\|worker\|node-exporter\)"\]/names: ["tasks.\1"]/; /^  # prometheus_varnish_exporter/,/^$/d'
variant prometheus-test.yml \
  's/\(scrape_interval\|evaluation_interval\|scrape_timeout\|refresh_interval\): [0-9]*s$/\1: 2s/'

alerts=$(sed -n 's/^ *- alert: *\([A-Za-z0-9]*\) *$/\1/p' rules/*.yml)
[ -n "$alerts" ] || fail "no alert found in rules/*.yml"
for a in $alerts; do
  # an `alertname: A` line followed (next line) by a non-empty `exp_alerts:`
  awk -v a="$a" '$1 == "alertname:" && $2 == a {hit = NR} hit && NR == hit + 1 && $0 ~ /^ *exp_alerts: *$/ {found = 1} END {exit !found}' \
    tests/*.test.yml || fail "$a: no test in tests/*.test.yml where it fires"
  lower=$(tr '[:upper:]' '[:lower:]' <<<"$a")
  # the runbook line of this alert: the first `runbook:` after `- alert: A`
  runbook=$(awk -v a="$a" '$1 == "-" && $2 == "alert:" {cur = $3} cur == a && $1 == "runbook:" {gsub(/"/, "", $2); print $2; exit}' rules/*.yml)
  want="deploy/monitoring/RUNBOOK.md#alert-$lower"
  [ "$runbook" = "$want" ] || fail "$a: runbook is '$runbook', not $want"
  grep -qx "### Alert: $a" RUNBOOK.md || fail "$a: RUNBOOK.md has no heading '### Alert: $a'"
  severity=$(awk -v a="$a" '$1 == "-" && $2 == "alert:" {cur = $3} cur == a && $1 == "severity:" {print $2; exit}' rules/*.yml)
  [[ "$severity" == page || "$severity" == ticket ]] || fail "$a: severity '$severity', not page or ticket"
done

route() {  # route <receiver> <label=value...>: the alert reaches that receiver
  amtool config routes test --config.file=alertmanager.yml --verify.receivers="$1" "${@:2}" \
    >/dev/null 2>&1 || fail "alertmanager.yml does not route {${*:2}} to $1"
}
route page alertname=FlipkartAPIDown job=flipkart-api severity=page
route ticket alertname=RedisDown job=redis severity=ticket
route default alertname=SomethingNew job=x
exit $status
