#!/usr/bin/env bash
# Installs what trellis, its demo and its tests need on a fresh Debian machine
# with Node 20 and npm: pnpm, the peers (openssl, age, Go, nginx, haproxy, a JDK) when
# running as root, the workspace, the build and the Go verifier. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

# pnpm 10, as package.json pins it: a missing pnpm, or another major that cannot switch to the pinned one offline.
case "$(pnpm --version 2>/dev/null)" in
  10.*) ;;
  *) echo "bootstrap: installing pnpm 10" >&2
     npm install -g pnpm@10 >/dev/null ;;
esac

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v age >/dev/null 2>&1 || need+=(age)
command -v go >/dev/null 2>&1 || need+=(golang-go)
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v faketime >/dev/null 2>&1 || need+=(faketime)
[ -x /usr/bin/time ] || need+=(time)   # GNU time: the benchmark's peak RSS (scripts/bench)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v vfychain >/dev/null 2>&1 || need+=(libnss3-tools)
command -v certtool >/dev/null 2>&1 || need+=(gnutls-bin)
command -v promtool >/dev/null 2>&1 || need+=(prometheus) # promtool: the metrics format and the example alert rules (tests/metrics.test.ts)
command -v ip >/dev/null 2>&1 || need+=(iproute2) # tests/airgap.test.ts: network namespaces and veth
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v python3 >/dev/null 2>&1 || need+=(python3)   # tests/scope-pr.test.ts drives a real pty
command -v git >/dev/null 2>&1 || need+=(git)           # tests/disaster-recovery.test.ts restores from a clone
command -v curl >/dev/null 2>&1 || need+=(curl)         # the README's quickstart (tests/doc-blocks.test.ts) calls nginx with it
[ -x /usr/bin/chromium ] || need+=(chromium)   # tests/report.test.ts opens the report in it (playwright-core)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)   # tests/root-on-token.test.ts: a PKCS#11 token for the root key
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)       # pkcs11-tool: what the token holds (docs/root-on-token.md)
command -v keytool >/dev/null 2>&1 && command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)   # tests/jvm.test.ts and the conformance table: keytool, JSSE handshakes (docs/jvm.md)
command -v botan >/dev/null 2>&1 || need+=(botan)   # tests/conformance.test.ts: the Botan column (botan cert_verify)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: apt-get install ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "bootstrap: missing ${need[*]}; install them (sudo apt-get install ${need[*]})" >&2
  fi
fi

pnpm install --frozen-lockfile --reporter=silent
pnpm run --silent build
bash scripts/build-goverify.sh
bash scripts/build-pkcs11.sh   # the optional PKCS#11 addon (token roots)
