#!/bin/bash
# Whole-process read costs of this build against another (BASE=DIR), alternating, on one store:
#   BASE=../old scripts/bench/read-costs.sh STORE NOW CI_IDENTITY_FILE [RUNS]
# prints the median wall time and the largest peak RSS of renew (nothing due), verify, status and plan.
S=$1; NOW=$2; ID=$3; N=${4:-5}
for c in "renew" verify status plan; do
  for code in base new; do
    if [ $code = base ]; then BIN=${BASE:?set BASE to a checkout of the code to compare, built}/packages/ci/dist/main.js; else BIN=$(dirname "$0")/../../packages/ci/dist/main.js; fi
    ts=(); rs=()
    for i in $(seq $N); do
      extra=""; [ "$c" = renew ] && extra="--out ${TMPDIR:-/tmp}/read-costs-out"
      TRELLIS_CI_IDENTITY_FILE=$ID /usr/bin/time -o ${TMPDIR:-/tmp}/read-costs.time -f "%e %M" node $BIN $c --store $S --now $NOW --now-ahead $extra > ${TMPDIR:-/tmp}/read-costs.out 2>/dev/null; r=$(tail -1 ${TMPDIR:-/tmp}/read-costs.time)
      ts+=(${r% *}); rs+=(${r#* })
      [ "$c" = renew ] && ! grep -q "no leaf is due" ${TMPDIR:-/tmp}/read-costs.out && echo "WARN renew wrote: $(tail -1 ${TMPDIR:-/tmp}/read-costs.out)"
    done
    med=$(printf "%s\n" "${ts[@]}" | sort -n | sed -n "$(( (N+1)/2 ))p"); maxr=$(printf "%s\n" "${rs[@]}" | sort -n | tail -1)
    echo "$c $code median ${med}s of [${ts[*]}] maxRSS $((maxr/1024))MB"
  done
done
