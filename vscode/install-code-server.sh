#!/usr/bin/env bash
# Installs code-server from the npm registry into $1 (a cache folder), with no download from
# anywhere else. code-server's own postinstall runs `npm install` in lib/vscode, where
# @vscode/ripgrep's install script fetches a ripgrep binary from GitHub: here every install
# script is first skipped, Debian's ripgrep is put where that script looks (it exits early when
# its bin/ exists), and then the native modules are built with `npm rebuild` (node-gyp against
# the machine's Node.js headers). The remaining steps are those of code-server's postinstall.sh.
# Usage: install-code-server.sh DEST VERSION
set -euo pipefail
DEST=$(realpath -m "$1")
VERSION=$2
export npm_config_yes=true  # node-pty's install script runs `npx node-gyp`
NPM_FLAGS=(--no-audit --no-fund --loglevel=error --unsafe-perm)
command -v rg >/dev/null || { echo "ripgrep is needed: apt-get install ripgrep" >&2; exit 1; }
rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp"
npm install --prefix "$DEST.tmp" --no-save --ignore-scripts "${NPM_FLAGS[@]}" "code-server@$VERSION"
CS="$(cd "$DEST.tmp/node_modules/code-server" && pwd)"
# code-server's own native module (argon2: password hashing; loaded at start-up)
(cd "$DEST.tmp" && npm rebuild "${NPM_FLAGS[@]}" argon2)
cd "$CS/lib/vscode"
npm install --omit=dev --ignore-scripts "${NPM_FLAGS[@]}"
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sf "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
npm rebuild "${NPM_FLAGS[@]}"
ln -sfn node_modules node_modules.asar
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)
(cd extensions && npm install --omit=dev "${NPM_FLAGS[@]}")
cd /
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
echo "code-server $VERSION installed in $DEST"
