#!/bin/sh
# Builds Tokenwarden from a source tree and installs it, with its runtime dependencies
# only (exactly as locked, no compiler needed), into a folder of its own:
#
#   sh deploy/build-release.sh <source tree> <target folder>
#
# The Dockerfile's build stage runs this; so does CI (.ci/check-install), which then
# starts the result under the image's Node.js major version. Needs Node.js 22.16+ at
# run time: SQLite is node:sqlite, since better-sqlite3 (optional) is left out.
set -eu
src=$(cd "$1" && pwd)
mkdir -p "$2"
dest=$(cd "$2" && pwd)

cd "$src"
echo "build-release: npm ci (no optional packages, no install scripts) in $src"
npm ci --omit=optional --ignore-scripts --no-audit --no-fund
echo "build-release: tsc"
npm run build --silent

echo "build-release: runtime dependencies into $dest"
cp package.json package-lock.json .npmrc LICENSE README.md "$dest/"
cp -R dist public presets "$dest/"
mkdir -p "$dest/deploy"
cp deploy/healthcheck.mjs "$dest/deploy/"
cd "$dest"
npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund
rm -f .npmrc
echo "build-release: done; run: node $dest/dist/cli/main.js serve"
