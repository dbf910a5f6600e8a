#!/usr/bin/env bash
# Installs code-server 4.100.3 (the real VS Code 1.100.3 workbench with a Node extension host) under the git-ignored
# .e2e/ folder, for scripts/e2e.mjs. Idempotent: does nothing when the install is complete.
#
#   bash scripts/e2e-setup.sh            # install if missing
#   bash scripts/e2e-setup.sh --force    # wipe .e2e/code-server and install again
#
# Why it is not a plain `npm install code-server` (see ../shared/notes/vscode-e2e.md): its postinstall refuses root
# and @vscode/ripgrep's postinstall downloads a binary from GitHub, which these machines cannot reach. So every
# install runs with --ignore-scripts and the native modules are built from source with node-gyp against the local
# Node headers. Needs the Debian packages chromium, libkrb5-dev and ripgrep (the CI script installs them).
set -euo pipefail

VERSION=4.100.3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.e2e/code-server"
CS="$DEST/node_modules/code-server"
VSCODE="$CS/lib/vscode"
STAMP="$DEST/.installed-$VERSION"
# Native builds share the machine with model training: one job at a time, low priority.
export JOBS=1
NICE="nice -n 10"
# npm bundles node-gyp; the npm config's nodedir (or node-gyp's own lookup) supplies the headers, offline.
NODE_GYP="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
# Build against the headers of the installed Node (Debian's nodejs ships them in /usr/include/node) so that node-gyp
# never tries to download them.
NODE_PREFIX="$(dirname "$(dirname "$(command -v node)")")"
if [[ -z "${npm_config_nodedir:-}" && -f "$NODE_PREFIX/include/node/node.h" ]]; then export npm_config_nodedir="$NODE_PREFIX"; fi

if [[ "${1:-}" == "--force" ]]; then rm -rf "$DEST"; fi
if [[ -f "$STAMP" ]]; then
  echo "e2e-setup: code-server $VERSION already installed in $DEST"
  exit 0
fi

[[ -f "$NODE_GYP" ]] || { echo "e2e-setup: node-gyp not found at $NODE_GYP" >&2; exit 1; }
for tool in node npm rg chromium; do
  command -v "$tool" >/dev/null || { echo "e2e-setup: '$tool' is missing (apt-get install chromium ripgrep libkrb5-dev)" >&2; exit 1; }
done
[[ -f /usr/include/krb5.h || -f /usr/include/krb5/krb5.h ]] || { echo "e2e-setup: libkrb5-dev headers are missing" >&2; exit 1; }
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[[ "$NODE_MAJOR" == "20" ]] || { echo "e2e-setup: code-server $VERSION needs Node 20, found $(node -v)" >&2; exit 1; }

mkdir -p "$DEST"
cd "$DEST"
[[ -f package.json ]] || echo '{ "name": "unmask-e2e-code-server", "private": true }' > package.json

echo "e2e-setup: npm install code-server@$VERSION (scripts ignored)"
$NICE npm install --no-save --ignore-scripts --no-audit --no-fund "code-server@$VERSION"

echo "e2e-setup: installing VS Code's own dependencies"
(cd "$VSCODE" && $NICE npm install --omit=dev --ignore-scripts --no-audit --no-fund)

echo "e2e-setup: building native modules with node-gyp"
# Every dependency of the VS Code server that ships a binding.gyp (node-pty, @parcel/watcher, @vscode/spdlog,
# kerberos, native-watchdog, ...). Nested copies are built too.
while IFS= read -r gyp; do
  dir="$(dirname "$gyp")"
  echo "  - ${dir#"$VSCODE/node_modules/"}"
  (cd "$dir" && $NICE node "$NODE_GYP" rebuild -j 1 >/dev/null 2>"$DEST/node-gyp.log") || {
    echo "e2e-setup: node-gyp failed in $dir:" >&2; tail -30 "$DEST/node-gyp.log" >&2; exit 1; }
done < <(find "$VSCODE/node_modules" -name binding.gyp -not -path '*/test/*' -not -path '*/deps/*' \
           -not -path '*/node-addon-api/*' -not -path '*/third_party/*')

echo "e2e-setup: ripgrep from Debian, node_modules.asar link"
mkdir -p "$VSCODE/node_modules/@vscode/ripgrep/bin"
cp /usr/bin/rg "$VSCODE/node_modules/@vscode/ripgrep/bin/rg"
[[ -e "$VSCODE/node_modules.asar" ]] || ln -s node_modules "$VSCODE/node_modules.asar"

echo "e2e-setup: built-in extensions' dependencies"
(cd "$VSCODE/extensions" && $NICE npm install --omit=dev --ignore-scripts --no-audit --no-fund)

echo "e2e-setup: argon2 from source"
$NICE npm rebuild argon2 --build-from-source

node "$CS/out/node/entry.js" --version >/dev/null
touch "$STAMP"
echo "e2e-setup: done ($(du -sh "$DEST" | cut -f1) in $DEST)"
