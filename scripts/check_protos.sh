#!/usr/bin/env bash
# The contract's checks: `buf lint` (STANDARD and COMMENTS rules, protos/buf.yaml)
# and `buf breaking` (FILE rules) against the previous commit, or the git
# revision given as $1. buf is the one pinned in tools/package.json: run
# `npm ci` in tools/ first.
#
# Where there is nothing to compare against (not a git clone, the first commit,
# a shallow clone without the parent, or a revision without protos/), the
# breaking check says what it skipped and why, and does not fail.
set -euo pipefail
cd "$(dirname "$0")/.."

buf=tools/node_modules/.bin/buf
if [ ! -x "$buf" ]; then
  echo "buf is not installed: run npm ci in tools/" >&2
  exit 1
fi
echo "buf $("$buf" --version)"

"$buf" lint protos
echo "buf lint: protos/ passes"

against="${1:-HEAD~1}"
if ! commit=$(git rev-parse --verify --quiet "$against^{commit}" 2>/dev/null); then
  echo "buf breaking skipped: no commit $against here (not a git clone, the first commit, or a shallow clone)"
elif ! git cat-file -e "$commit:protos" 2>/dev/null; then
  echo "buf breaking skipped: $against ($commit) has no protos/ to compare against"
else
  # A commit id rather than a name like HEAD~1, so buf reads exactly the
  # commit that git resolved.
  "$buf" breaking protos --against ".git#ref=$commit,subdir=protos"
  echo "buf breaking: no breaking change against $against ($commit)"
fi
