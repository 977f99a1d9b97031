#!/usr/bin/env bash
# The contract's checks: `buf lint` (STANDARD and COMMENTS rules, protos/buf.yaml)
# and `buf breaking` (FILE rules). buf is the one pinned in tools/package.json:
# run `npm ci` in tools/ first.
#
#   scripts/check_protos.sh            against HEAD~1, and against the merge base
#                                      of HEAD with main (origin/main when the
#                                      remote has one, else the local main)
#   scripts/check_protos.sh REVISION   against that git revision alone
#
# The merge base catches a break made earlier on a branch and hidden from
# HEAD~1 by the commits after it; it is skipped when it is HEAD itself (on
# main) or HEAD~1 (checked already). Where there is nothing to compare against
# (not a git clone, the first commit, a shallow clone without the commit, no
# main branch, or a revision without protos/), the check says what it skipped
# and why, and does not fail. Every comparison runs; the script fails if any
# found a breaking change.
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

failed=0

# breaking REVISION DESCRIPTION: buf breaking against one git revision.
breaking() {
  local against=$1 what=$2 commit
  if ! commit=$(git rev-parse --verify --quiet "$against^{commit}" 2>/dev/null); then
    echo "buf breaking skipped against $what: no commit $against here (not a git clone, the first commit, or a shallow clone)"
  elif ! git cat-file -e "$commit:protos" 2>/dev/null; then
    echo "buf breaking skipped against $what: $commit has no protos/ to compare against"
  # A commit id rather than a name like HEAD~1, so buf reads exactly the
  # commit that git resolved.
  elif "$buf" breaking protos --against ".git#ref=$commit,subdir=protos"; then
    echo "buf breaking: no breaking change against $what ($commit)"
  else
    echo "buf breaking: the changes above break the contract against $what ($commit)" >&2
    failed=1
  fi
}

# The merge base of HEAD with main, or a line saying why there is none to check.
merge_base_with_main() {
  local main head parent base
  if git rev-parse --verify --quiet refs/remotes/origin/main >/dev/null; then
    main=origin/main
  elif git rev-parse --verify --quiet refs/heads/main >/dev/null; then
    main=main
  else
    echo "buf breaking skipped against the merge base with main: no origin/main or main branch here"
    return
  fi
  if ! head=$(git rev-parse --verify --quiet HEAD); then
    echo "buf breaking skipped against the merge base with $main: no HEAD commit"
    return
  fi
  if ! base=$(git merge-base HEAD "$main" 2>/dev/null); then
    echo "buf breaking skipped against the merge base with $main: none here (unrelated histories, or a shallow clone)"
    return
  fi
  parent=$(git rev-parse --verify --quiet "HEAD~1^{commit}" 2>/dev/null || true)
  if [ "$base" = "$head" ]; then
    echo "buf breaking skipped against the merge base with $main: it is HEAD itself ($base), so HEAD is on $main"
  elif [ "$base" = "$parent" ]; then
    echo "buf breaking skipped against the merge base with $main: it is HEAD~1 ($base), compared above"
  else
    breaking "$base" "the merge base of HEAD and $main"
  fi
}

if [ $# -gt 0 ]; then
  breaking "$1" "$1"
else
  breaking HEAD~1 HEAD~1
  merge_base_with_main
fi
exit "$failed"
