#!/usr/bin/env bash
# Time to a first mTLS handshake: plays the README's quickstart as a new user would, from a
# checkout, in a scratch directory, timing each step, and prints a table.
#
#   bash scripts/first-handshake.sh [--no-build] [--keep]
#
# Step 0 builds the release (`pnpm dist`) the user links onto PATH; --no-build reuses dist/.
# The quickstart's commands are read from README.md (the block marked doc-test id=quickstart),
# so this measures what the README says. Machine paths are filled in as tests/doc-blocks.test.ts
# does: /etc/trellis and /etc/nginx/conf.d move into the scratch directory, nginx runs from its
# own prefix on a free port of 127.0.0.1, so nothing outside the scratch directory changes.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=yes keep=no
for a in "$@"; do
  case $a in --no-build) build=no ;; --keep) keep=yes ;; *) echo "usage: $0 [--no-build] [--keep]" >&2; exit 2 ;; esac
done
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "first-handshake: nginx is not installed (apt-get install nginx-light)" >&2; exit 2; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/trellis-first-XXXXXX")
ngx="$scratch/nginx"
cleanup() {
  [ -x "$scratch/bin/nginx" ] && "$scratch/bin/nginx" -s stop 2>/dev/null || true
  if [ $keep = yes ]; then echo "kept $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
mkdir -p "$scratch/bin" "$ngx/conf.d" "$scratch/etc" "$scratch/work"
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
rows=()

t=$(now)
if [ $build = yes ]; then (cd "$repo" && pnpm dist >/dev/null); fi
[ -f "$repo/dist/trellis-ci.mjs" ] || { echo "first-handshake: no dist/ (run without --no-build)" >&2; exit 2; }
if [ $build = yes ]; then what='pnpm dist (the release, linked onto PATH)'; else what='pnpm dist: skipped (--no-build)'; fi
rows+=("0|$what|$(secs "$t" "$(now)")")

# The release's CLIs on PATH, as docs/walkthrough.md links them; nginx laid out as Debian's.
for c in root ci agent drill; do printf '#!/bin/sh\nexec node %s "$@"\n' "$repo/dist/trellis-$c.mjs" > "$scratch/bin/trellis-$c"; done
printf 'pid %s/nginx.pid;\nerror_log %s/error.log info;\nevents {}\nhttp {\n  access_log off;\n  include %s/conf.d/*.conf;\n}\n' "$ngx" "$ngx" "$ngx" > "$ngx/nginx.conf"
printf '#!/bin/sh\nexec %s -p %s/ -c %s/nginx.conf -e %s/error.log "$@"\n' "$(command -v nginx || echo /usr/sbin/nginx)" "$ngx" "$ngx" "$ngx" > "$scratch/bin/nginx"
chmod +x "$scratch/bin/"*
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The quickstart block, its paths and port filled, one timed step per command (a heredoc goes with its command).
awk '/<!-- doc-test: run id=quickstart -->/ { on = 1; next } on && /^```sh/ { inb = 1; next } inb && /^```/ { exit } inb { print }' "$repo/README.md" \
  | sed -e "s#/etc/nginx/conf.d#$ngx/conf.d#g" -e "s#/etc/trellis#$scratch/etc/trellis#g" -e "s#:8443#:$port#g" > "$scratch/quickstart.sh"
[ -s "$scratch/quickstart.sh" ] || { echo "first-handshake: no quickstart block in README.md" >&2; exit 1; }
{
  echo 'set -euo pipefail'
  echo 'now() { date +%s%N; }'
  awk -v steps="$scratch/steps" -v cmds="$scratch/commands" '
    function flush() { if (cmd != "") { n++; print n "|" first > cmds; printf "t=$(now)\n%s\necho \"%d|$t|$(now)\" >> %s\n", cmd, n, steps; cmd = "" } }
    heredoc != "" { cmd = cmd "\n" $0; if ($0 == heredoc) { heredoc = ""; flush() } next }
    /^[[:space:]]*$/ { next }
    { cmd = $0; first = $0; if (match($0, /<<\047[A-Z]+\047/)) { heredoc = substr($0, RSTART + 3, RLENGTH - 4); next } flush() }
  ' "$scratch/quickstart.sh"
} > "$scratch/timed.sh"
cd "$scratch/work"
env -i PATH="$scratch/bin:$PATH" HOME="$scratch" LANG=C.UTF-8 bash "$scratch/timed.sh" > "$scratch/output.txt" 2> "$scratch/errors.txt" || {
  echo "first-handshake: the quickstart failed; its output:" >&2; cat "$scratch/output.txt" "$scratch/errors.txt" >&2; exit 1
}
n=0
while IFS='|' read -r step start end; do
  n=$step
  # The command as the README writes it, less its identity variable, cut to a table's width.
  cmd=$(grep "^$step|" "$scratch/commands" | cut -d'|' -f2- | sed -E 's/^(TRELLIS_[A-Z_]+=[^ ]+ )+//')
  [ ${#cmd} -le 60 ] || cmd="${cmd:0:59}…"
  rows+=("$step|$cmd|$(secs "$start" "$end")")
done < "$scratch/steps"

codes=$(tail -n 2 "$scratch/output.txt" | tr '\n' ' ')
[ "$codes" = "200 400 " ] || { echo "first-handshake: expected 200 then 400 from curl, got: $codes" >&2; exit 1; }

total=0 quick=0
printf '| step | command | seconds |\n|---:|---|---:|\n'
for r in "${rows[@]}"; do
  IFS='|' read -r step cmd s <<< "$r"
  printf '| %s | `%s` | %s |\n' "$step" "$cmd" "$s"
  total=$(awk -v a="$total" -v b="$s" 'BEGIN { printf "%.1f", a + b }')
  [ "$step" = 0 ] || quick=$(awk -v a="$quick" -v b="$s" 'BEGIN { printf "%.1f", a + b }')
done
printf '| | **the quickstart (steps 1–%s)** | **%s** |\n| | **with the build** | **%s** |\n' "$n" "$quick" "$total"
echo "curl: 200 for us-east-1/web, 400 for eu-west-1/api (nginx refused it)"
