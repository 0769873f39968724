#!/usr/bin/env bash
# Rebuilds images/labextension/prebuilt/ (the prebuilt JupyterLab extension
# @corehour/usage) from package.json, src/ and style/.
#
# Everything happens in a temporary directory: a copy of the sources, their
# node_modules (npm) and a venv with the same JupyterLab as the images, for
# `jupyter labextension build`. Only prebuilt/ in this folder is replaced.
#
#   images/labextension/build.sh            # needs node >= 20, npm, python3, network
#   KEEP_TMP=1 images/labextension/build.sh # leave the temp dir for inspection
set -euo pipefail

JUPYTERLAB_VERSION=4.6.6
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/corehour-labext.XXXXXX")"
cleanup() {
  if [[ "${KEEP_TMP:-}" == 1 ]]; then
    echo "build.sh: temp dir kept: $tmp" >&2
  else
    rm -rf "$tmp"
  fi
}
trap cleanup EXIT

echo "build.sh: venv with jupyterlab==$JUPYTERLAB_VERSION" >&2
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "jupyterlab==$JUPYTERLAB_VERSION"

echo "build.sh: sources and node_modules" >&2
mkdir "$tmp/src"
cp -R "$here/package.json" "$here/src" "$here/style" "$tmp/src/"
(cd "$tmp/src" && npm install --no-audit --no-fund --loglevel=error)

echo "build.sh: jupyter labextension build" >&2
# The builder finds @jupyterlab/core-meta (pinned to the images' JupyterLab)
# in node_modules, so it downloads nothing more; HOME keeps its caches in tmp.
(cd "$tmp/src" && HOME="$tmp/home" PATH="$tmp/venv/bin:$PATH" \
  jupyter labextension build .)

out="$tmp/src/prebuilt"
test -f "$out/package.json"
ls "$out"/static/remoteEntry.*.js >/dev/null
if find "$out" -name node_modules -o -name '*.map' | grep -q .; then
  echo "build.sh: unexpected node_modules or source maps in $out" >&2
  exit 1
fi

rm -rf "$here/prebuilt.new"
cp -R "$out" "$here/prebuilt.new"
rm -rf "$here/prebuilt"
mv "$here/prebuilt.new" "$here/prebuilt"
echo "build.sh: wrote $here/prebuilt" >&2
find "$here/prebuilt" -type f | sort | sed "s|^$here/||" >&2
