#!/bin/sh
# trellis release installer (sh, GNU coreutils, OpenSSL): one implementation for every target that lands
# files on a host (dir locally, ssh remotely, sealed through trellis-agent).
#
#   sh installer.sh TARGET STAGING [RELOAD_COMMAND]
#
# STAGING holds the new files (any of cert.pem key.pem chain.pem
# chain-and-key.pem trust.pem trust.openssl.pem crl.pem client-ca-names.pem). A release is the full set: files
# not staged are taken from the current release. It is validated with OpenSSL
# before TARGET/current is switched to it by an atomic rename; an identical
# release is not installed; a failed reload switches back. TARGET/previous
# keeps the release before, for rollback. Exit codes: 0 installed or
# unchanged, 10 invalid release (current kept), 11 reload failed (rolled back).
set -eu
umask 077
target=$1 staging=$2 reload=${3:-}
files="cert.pem key.pem chain.pem chain-and-key.pem trust.pem trust.openssl.pem crl.pem client-ca-names.pem"
say() { echo "trellis-install: $*"; }
cleanup() { rm -rf "$staging"; }
trap cleanup EXIT

mkdir -p "$target/releases"
current=""
[ -L "$target/current" ] && current=$(readlink "$target/current")
id=$(date -u +%Y%m%dT%H%M%SZ)-$$
release="$target/releases/$id"
mkdir "$release"
for f in $files; do
  if [ -f "$staging/$f" ]; then cp "$staging/$f" "$release/$f"
  elif [ -n "$current" ] && [ -f "$target/$current/$f" ]; then cp "$target/$current/$f" "$release/$f"
  fi
done
chmod 0644 "$release"/*.pem 2>/dev/null || true
chmod 0600 "$release/key.pem" "$release/chain-and-key.pem" 2>/dev/null || true
chmod 0755 "$release"

invalid() { rm -rf "$release"; say "invalid release: $*; current release kept"; exit 10; }
for f in cert.pem key.pem chain.pem trust.openssl.pem; do [ -f "$release/$f" ] || invalid "$f missing (a first release needs a leaf)"; done
openssl x509 -in "$release/cert.pem" -noout 2>/dev/null || invalid "cert.pem does not parse"
openssl pkey -in "$release/key.pem" -noout 2>/dev/null || invalid "key.pem does not parse"
[ "$(openssl pkey -in "$release/key.pem" -pubout)" = "$(openssl x509 -in "$release/cert.pem" -noout -pubkey)" ] || invalid "key.pem does not match cert.pem"
if [ -f "$release/crl.pem" ]; then
  out=$(openssl verify -x509_strict -purpose sslserver -CAfile "$release/trust.openssl.pem" -crl_check_all -CRLfile "$release/crl.pem" "$release/cert.pem" 2>&1) || invalid "cert.pem does not verify against its trust bundle and CRLs: $(echo "$out" | grep '^error' | head -1)"
else
  out=$(openssl verify -x509_strict -purpose sslserver -CAfile "$release/trust.openssl.pem" "$release/cert.pem" 2>&1) || invalid "cert.pem does not verify against its trust bundle: $(echo "$out" | grep '^error' | head -1)"
fi

if [ -n "$current" ]; then
  same=yes
  for f in $files; do
    if [ -f "$release/$f" ] || [ -f "$target/$current/$f" ]; then cmp -s "$release/$f" "$target/$current/$f" || same=no; fi
  done
  if [ $same = yes ]; then rm -rf "$release"; say "unchanged $current"; exit 0; fi
fi

swap() { ln -sfn "$1" "$target/.current.tmp" && mv -T "$target/.current.tmp" "$target/current"; }
swap "releases/$id"
if [ -n "$reload" ] && ! sh -c "$reload" >/dev/null 2>&1; then
  if [ -n "$current" ]; then swap "$current"; sh -c "$reload" >/dev/null 2>&1 || true; else rm -f "$target/current"; fi
  rm -rf "$release"
  say "reload failed; rolled back to ${current:-nothing}"
  exit 11
fi
if [ -n "$current" ]; then ln -sfn "$current" "$target/.previous.tmp" && mv -T "$target/.previous.tmp" "$target/previous"; fi
# Keep the current and the previous release only.
for r in "$target"/releases/*; do
  case "releases/$(basename "$r")" in "releases/$id"|"$current") ;; *) rm -rf "$r" ;; esac
done
say "installed releases/$id"
