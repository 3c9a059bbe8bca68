#!/bin/sh
# trellis release installer (sh, GNU coreutils, OpenSSL): one implementation for every target that lands
# files on a host (dir locally, ssh remotely, sealed through trellis-agent).
#
#   sh installer.sh TARGET STAGING [RELOAD_COMMAND]
#
# STAGING holds the new files (any of cert.pem key.pem chain.pem
# chain-and-key.pem trust.pem trust.openssl.pem crl.pem client-ca-names.pem, keystore.p12
# truststore.p12 crl.jvm.pem (a deploy entry's formats: [pkcs12]), and the
# directories capath/ and anchors/, which go with trust.pem). A release is the full set: files
# not staged are taken from the current release. A cert.pem staged without key.pem is for a key
# the host holds: key.pem links to TARGET/keys/sha256-<SHA-256 of its public key>.pem. It is validated with OpenSSL
# before TARGET/current is switched to it by an atomic rename; an identical
# release is not installed; a failed reload switches back. TARGET/previous
# keeps the release before, for rollback. Exit codes: 0 installed or
# unchanged, 10 invalid release (current kept), 11 reload failed (rolled back).
set -eu
umask 077
target=$1 staging=$2 reload=${3:-}
files="cert.pem key.pem chain.pem chain-and-key.pem trust.pem trust.openssl.pem crl.pem client-ca-names.pem keystore.p12 truststore.p12 crl.jvm.pem"
dirs="capath anchors"
say() { echo "trellis-install: $*"; }

point() { :; }
fault_report() { :; }
durable() { point fsync; sync -- "$@"; }
rename() { point rename; mv -T -- "$1" "$2"; }

cleanup() { rm -rf "$staging"; fault_report; }
trap cleanup EXIT

mkdir -p "$target/releases"
current=""
[ -L "$target/current" ] && current=$(readlink "$target/current")
# mktemp -d: created exclusively (never through a planted symlink) under an unpredictable name.
release=$(mktemp -d "$target/releases/$(date -u +%Y%m%dT%H%M%SZ)-XXXXXXXXXX")
id=$(basename "$release")
# The JVM files come with every release that asks for them (truststore.p12 staged): never kept once it stops asking,
# and the keystore kept only beside the CI-minted key it holds.
carry() {
  case $1 in
    truststore.p12|crl.jvm.pem) return 1 ;;
    keystore.p12) [ $paired = no ] && [ -f "$staging/truststore.p12" ] && [ ! -f "$staging/key.pem" ] ;;
    *) return 0 ;;
  esac
}
# A leaf staged without its key is for a key the host holds (key: host): paired below from TARGET/keys/, never carried over.
paired=no
[ -f "$staging/cert.pem" ] && [ ! -f "$staging/key.pem" ] && paired=yes
for f in $files; do
  if [ -f "$staging/$f" ]; then cp "$staging/$f" "$release/$f"
  elif [ $paired = yes ] && { [ "$f" = key.pem ] || [ "$f" = chain-and-key.pem ]; }; then :
  # -P: a paired key.pem stays a link to TARGET/keys/, never a copy of the host's key.
  elif carry "$f" && [ -n "$current" ] && { [ -f "$target/$current/$f" ] || [ -L "$target/$current/$f" ]; }; then cp -P "$target/$current/$f" "$release/$f"
  fi
done
# Never through a link: chmod would loosen the host's own key file.
for f in "$release"/*.pem "$release"/*.p12; do [ -L "$f" ] || [ ! -e "$f" ] || chmod 0644 "$f"; done
for f in key.pem chain-and-key.pem keystore.p12; do [ -L "$release/$f" ] || chmod 0600 "$release/$f" 2>/dev/null || true; done
# The bundle one anchor per file (capath/, anchors/) travels with trust.pem: staged with it, or kept with it from the current release.
for d in $dirs; do
  if [ -f "$staging/trust.pem" ]; then src="$staging/$d"; elif [ -n "$current" ]; then src="$target/$current/$d"; else src=""; fi
  if [ -n "$src" ] && [ -d "$src" ] && [ -n "$(ls -A "$src")" ]; then
    mkdir "$release/$d" && cp "$src"/* "$release/$d/" && chmod 0644 "$release/$d"/* && chmod 0755 "$release/$d"
  fi
done
chmod 0755 "$release"

invalid() { rm -rf "$release"; say "invalid release: $*; current release kept"; exit 10; }
if [ $paired = yes ]; then
  # The host keeps each key by the SHA-256 of its public key, outside the release directories: a rollback finds it too.
  h=$(openssl x509 -in "$release/cert.pem" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1)
  [ -f "$target/keys/sha256-$h.pem" ] || invalid "the host holds no key for cert.pem (sha256:$h): keep it as $target/keys/sha256-$h.pem"
  ln -s "../../keys/sha256-$h.pem" "$release/key.pem"
fi
for f in cert.pem key.pem chain.pem trust.openssl.pem; do [ -f "$release/$f" ] || invalid "$f missing (a first release needs a leaf)"; done
openssl x509 -in "$release/cert.pem" -noout 2>/dev/null || invalid "cert.pem does not parse"
openssl pkey -in "$release/key.pem" -noout 2>/dev/null || invalid "key.pem does not parse"
[ "$(openssl pkey -in "$release/key.pem" -pubout)" = "$(openssl x509 -in "$release/cert.pem" -noout -pubkey)" ] || invalid "key.pem does not match cert.pem"
if [ -f "$release/crl.pem" ]; then
  out=$(openssl verify -x509_strict -purpose sslserver -CAfile "$release/trust.openssl.pem" -crl_check_all -CRLfile "$release/crl.pem" "$release/cert.pem" 2>&1) || invalid "cert.pem does not verify against its trust bundle and CRLs: $(echo "$out" | grep '^error' | head -1)"
else
  out=$(openssl verify -x509_strict -purpose sslserver -CAfile "$release/trust.openssl.pem" "$release/cert.pem" 2>&1) || invalid "cert.pem does not verify against its trust bundle: $(echo "$out" | grep '^error' | head -1)"
fi
if [ -d "$release/capath" ]; then
  out=$(openssl verify -x509_strict -purpose sslserver -CApath "$release/capath" "$release/cert.pem" 2>&1) || invalid "cert.pem does not verify against capath/: $(echo "$out" | grep '^error' | head -1)"
fi

if [ -n "$current" ]; then
  same=yes
  for d in $dirs; do
    if [ -d "$release/$d" ] || [ -d "$target/$current/$d" ]; then diff -r -q "$release/$d" "$target/$current/$d" >/dev/null 2>&1 || same=no; fi
  done
  for f in $files; do
    if [ -f "$release/$f" ] || [ -f "$target/$current/$f" ]; then cmp -s "$release/$f" "$target/$current/$f" || same=no; fi
  done
  if [ $same = yes ]; then rm -rf "$release"; say "unchanged $current"; exit 0; fi
fi

# A new symlink under an unpredictable name (ln -s without -f refuses an existing one), renamed over the old.
relink() { tmp=$(mktemp -u "$target/.$2.XXXXXXXXXX") && ln -s -- "$1" "$tmp" && rename "$tmp" "$target/$2" && durable "$target"; }
swap() { relink "$1" current; }
durable "$release"/* "$release"
for d in $dirs; do if [ -d "$release/$d" ]; then durable "$release/$d"/* "$release/$d"; fi; done
swap "releases/$id"
# The reload's output goes to a file, not a pipe: a server it starts keeps its stderr open, and a pipe would wait for it.
said=$(mktemp)
if [ -n "$reload" ] && ! sh -c "$reload" >"$said" 2>&1; then
  if [ -n "$current" ]; then swap "$current"; sh -c "$reload" >/dev/null 2>&1 || true; else rm -f "$target/current"; fi
  rm -rf "$release"
  # What the server said, bounded; the caller escapes it before showing it.
  head -c 2000 "$said" | head -n 10 | sed 's/^/trellis-reload: /'
  rm -f "$said"
  say "reload failed; rolled back to ${current:-nothing}"
  exit 11
fi
rm -f "$said"
if [ -n "$current" ]; then relink "$current" previous; fi
# Keep the current and the previous release only.
for r in "$target"/releases/*; do
  case "releases/$(basename "$r")" in "releases/$id"|"$current") ;; *) rm -rf "$r" ;; esac
done
say "installed releases/$id"
