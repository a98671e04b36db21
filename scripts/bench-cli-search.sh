#!/usr/bin/env bash
# Times the bulk bench's twelve queries as whole `igdm search` processes.
#
# Usage: scripts/bench-cli-search.sh IGDM_BINARY DATABASE_URL [ROUNDS]
# The database is one the bench kept, e.g. after
#   IGDM_BENCH_SQLITE_PATH=/tmp/b1m.db IGDM_BENCH_BACKENDS=sqlite \
#   cargo bench -p igdm-store --bench bulk
# run: scripts/bench-cli-search.sh target/release/igdm sqlite:///tmp/b1m.db 10
# Prints per query the p50/p99 wall time of ROUNDS runs and the peak RSS of
# one more run (/usr/bin/time), then `igdm --version` as the bare process cost.
set -euo pipefail
bin=$1
url=$2
rounds=${3:-10}
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
echo '{"accounts":[{"name":"bench","connector":"instagram-web","backend":"web","created_at":"2026-01-01T00:00:00Z"}]}' \
  >"$home/accounts.json"
export IGDM_HOME=$home IGDM_DATABASE_URL=$url
unset IGDM_ACCOUNT
queries=(mikalo fékalo pelolo rutilo homimi beperu beguho nekalo '"kakalo lokalo"' 'sakalo from:user7' quasar xylophone)
ms() { echo "scale=2; $1 / 1000" | bc; }
for q in "${queries[@]}"; do
  times=()
  for _ in $(seq "$rounds"); do
    s=$(date +%s%N)
    "$bin" search --limit 20 "$q" >/dev/null
    e=$(date +%s%N)
    times+=($(((e - s) / 1000)))
  done
  mapfile -t sorted < <(printf '%s\n' "${times[@]}" | sort -n)
  n=${#sorted[@]}
  p99=$((n * 99 / 100))
  rss=$({ /usr/bin/time -f %M "$bin" search --limit 20 "$q" >/dev/null; } 2>&1 | tail -1)
  printf '%-22s p50 %7s ms  p99 %7s ms  peak RSS %6s MiB\n' "$q" \
    "$(ms "${sorted[$((n / 2))]}")" "$(ms "${sorted[$p99]}")" "$(echo "scale=1; $rss / 1024" | bc)"
done
s=$(date +%s%N)
for _ in $(seq "$rounds"); do "$bin" --version >/dev/null; done
e=$(date +%s%N)
printf 'igdm --version mean %s ms\n' "$(ms $(((e - s) / 1000 / rounds)))"
