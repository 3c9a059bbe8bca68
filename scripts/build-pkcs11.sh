#!/usr/bin/env bash
# Builds the pkcs11js native addon (token roots, docs/root-on-token.md) when it is not built yet.
# Optional: without it trellis-root works for file roots and refuses a token root with a clear message.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(node -e "console.log(require('path').dirname(require.resolve('pkcs11js/package.json', { paths: ['packages/offline'] })))" 2>/dev/null) || { echo "build-pkcs11: pkcs11js is not installed (optional)" >&2; exit 0; }
[ -f "$dir/build/Release/pkcs11.node" ] && exit 0
gyp=$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
[ -f "$gyp" ] || gyp=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
nodedir=()
[ -f /usr/include/node/common.gypi ] && nodedir=(--nodedir=/usr)   # Debian's headers: no download
(cd "$dir" && node "$gyp" rebuild "${nodedir[@]}" >/dev/null 2>&1) || echo "build-pkcs11: the pkcs11js addon did not build; token roots are unavailable" >&2
