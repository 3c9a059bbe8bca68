#!/usr/bin/env bash
# The whole suite as if a year later and as if two years later: proof that no
# test carries a date that ages. Each run is one private mount namespace whose
# /etc is an overlay holding ld.so.preload (libfaketime) and faketimerc (the
# offset), so every dynamically linked process the suite starts reads the
# moved clock, whatever environment a test gives it: Node, OpenSSL, nginx and
# its workers, haproxy, NSS, GnuTLS, git. Go reads the clock without libc, so
# the tests hand Go's verifiers the instant explicitly (-at, gobatch's third
# field). Nothing outside the namespace sees the moved clock.
#
#   sudo bash scripts/test-ahead.sh            # +365d, then +730d
#   sudo bash scripts/test-ahead.sh 400d       # one offset (libfaketime's syntax, relative)
#
# The example store's intermediates end on 2029-11-21: offsets past that date
# test a store nobody would still run.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "test-ahead: needs root for a private mount namespace (unshare --mount)" >&2
  exit 2
fi
bash scripts/bootstrap.sh
lib="$(dpkg -L libfaketime 2>/dev/null | grep -m1 '/libfaketime\.so\.1$')"
if [ -z "$lib" ] || [ ! -f "$lib" ]; then
  echo "test-ahead: libfaketime.so.1 not found (apt-get install faketime)" >&2
  exit 2
fi

offsets=("$@")
[ ${#offsets[@]} -gt 0 ] || offsets=(365d 730d)
mkdir -p test-results
status=0
summary=()
for off in "${offsets[@]}"; do
  case "$off" in
    [0-9]*[dhm]) ;;
    *) echo "test-ahead: an offset is a whole number of days, hours or minutes (365d), not \"$off\"" >&2; exit 2 ;;
  esac
  work="$(mktemp -d)"
  mkdir "$work/upper" "$work/work"
  printf '%s\n' "$lib" >"$work/upper/ld.so.preload"
  printf '+%s\n' "$off" >"$work/upper/faketimerc"
  out="test-results/ahead-$off.json"
  rm -f "$out"
  echo "== the suite at +$off: $(unshare --mount --propagation private sh -c "mount -t overlay overlay -o lowerdir=/etc,upperdir=$work/upper,workdir=$work/work /etc && date -u +%Y-%m-%dT%H:%M:%SZ")"
  # DONT_FAKE_MONOTONIC: timers and timeouts keep the real pace (both spellings: libfaketime 0.9.10 and later).
  # TRELLIS_TEST_AHEAD: the two closed-stdout cases step aside (libfaketime takes fd 1 first; tests/crash-machine.test.ts).
  TRELLIS_TEST_AHEAD="$off" DONT_FAKE_MONOTONIC=1 FAKETIME_DONT_FAKE_MONOTONIC=1 unshare --mount --propagation private sh -c \
    "mount -t overlay overlay -o lowerdir=/etc,upperdir=$work/upper,workdir=$work/work /etc && exec pnpm exec vitest run"
  code=$?
  # vitest.config.ts's json reporter writes test-results/vitest.json; each offset keeps its own copy.
  cp test-results/vitest.json "$out" 2>/dev/null
  [ $code = 0 ] || status=1
  counts="$(node -e '
    let r = { numPassedTests: 0, numFailedTests: 0 };
    try { r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch { console.error("no vitest result file"); }
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`);' "$out")"
  summary+=("+$off: $counts (exit $code)")
  rm -rf "$work"
done
printf '%s\n' "${summary[@]}"
exit $status
