#!/bin/sh
# Verifies a trellis release before anything in it runs (docs/installing.md):
#
#   sh verify-release.sh DIR ALLOWED_SIGNERS
#
# 1. DIR/manifest.json and DIR/SHA256SUMS each carry an SSH signature (.sig, namespace
#    trellis-release) by a key in ALLOWED_SIGNERS, the file the custodian holds (ssh-keygen -Y verify);
# 2. every file the manifest lists is in DIR with that SHA-256 (sha256sum -c), SHA256SUMS says the
#    same, and DIR holds nothing else. Exit 0 verified, 1 refused (saying why), 2 usage. Uses
#    ssh-keygen, sha256sum and node (only to read the manifest's JSON, once its signature checked
#    out). Nothing in DIR is run.
set -eu
namespace=trellis-release
refuse() { echo "verify-release: REFUSED: $*" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: verify-release.sh DIR ALLOWED_SIGNERS" >&2; exit 2; }
dir=$1 signers=$2
[ -f "$signers" ] || refuse "$signers: no allowed-signers file"
# Which allowed signer made a signature, then a full check (signature, namespace, validity) as that principal.
signed_by() {
  [ -f "$dir/$1" ] || refuse "$dir/$1: missing"
  [ -f "$dir/$1.sig" ] || refuse "$dir/$1.sig: missing (an unsigned release is not installed)"
  principals=$(ssh-keygen -Y find-principals -s "$dir/$1.sig" -f "$signers" 2>/dev/null) ||
    refuse "$dir/$1.sig: not signed by any key in $signers"
  for p in $principals; do
    if ssh-keygen -Y verify -f "$signers" -I "$p" -n "$namespace" -s "$dir/$1.sig" <"$dir/$1" >/dev/null 2>&1; then
      echo "$p"
      return 0
    fi
  done
  refuse "$dir/$1: the signature does not verify for namespace $namespace (changed after signing, or signed for something else)"
}
signer=$(signed_by manifest.json)
signed_by SHA256SUMS >/dev/null

# The listed files, as sha256sum lines; names must be plain file names (nothing outside DIR).
sums=$(node -e '
  const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (m.format !== "trellis-release/1" || !Array.isArray(m.artifacts)) throw new Error("not a trellis-release/1 manifest");
  for (const a of m.artifacts) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(a.file) || !/^[0-9a-f]{64}$/.test(a.sha256)) throw new Error(`bad entry ${JSON.stringify(a.file)}`);
    console.log(`${a.sha256}  ${a.file}`);
  }' "$dir/manifest.json" 2>&1) || refuse "$dir/manifest.json: $sums"
commit=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).commit)' "$dir/manifest.json")

listed=$(printf '%s\n' "$sums" | sed 's/^[0-9a-f]*  //' | sort)
present=$(cd "$dir" && find . -mindepth 1 -maxdepth 1 ! -name manifest.json ! -name SHA256SUMS ! -name '*.sig' | sed 's|^\./||' | sort)
extra=$(printf '%s\n' "$present" | grep -vxF -e "$listed" || true)
[ -z "$extra" ] || refuse "$dir holds files the manifest does not list: $(echo $extra)"

bad=$(cd "$dir" && printf '%s\n' "$sums" | sha256sum -c --strict 2>/dev/null | grep -v ': OK$' || true)
[ -z "$bad" ] || refuse "$(printf '%s' "$bad" | sed 's/: FAILED open or read$/: missing/; s/: FAILED$/: SHA-256 differs from the manifest/' | tr '\n' ';' | sed 's/;$//; s/;/; /g')"

# The standard-tools view must agree: the same files and hashes, and the manifest itself.
expected=$(printf '%s\n%s  manifest.json\n' "$sums" "$(sha256sum "$dir/manifest.json" | cut -d' ' -f1)")
[ "$expected" = "$(cat "$dir/SHA256SUMS")" ] || refuse "$dir/SHA256SUMS: differs from manifest.json"

count=$(printf '%s\n' "$sums" | wc -l)
echo "verify-release: $dir: manifest signed by $signer ($namespace); $count file(s) match; commit $commit"
