#!/usr/bin/env bash
# Used by the deploy and rollback workflows after a successful `pulumi up` that changed image
# digests: commits Pulumi.STACK.yaml and pushes it to the branch the workflow runs on, so the
# repository and the stack agree (otherwise the next deploy from main would put the old digests
# back). `[skip ci]` keeps the push from starting another deploy.
#   scripts/commit-stack-file.sh STACK MESSAGE
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stack=${1:-} message=${2:-}
[[ -n $stack && -n $message ]] || die "usage: scripts/commit-stack-file.sh STACK MESSAGE"
branch=${GITHUB_REF_NAME:-$(git -C "$COOP_ROOT" rev-parse --abbrev-ref HEAD)}
file=Pulumi.$stack.yaml
cd "$COOP_ROOT"
[[ -f $file ]] || die "$file does not exist"
if git diff --quiet -- "$file"; then
  say "$file is unchanged: nothing to commit"
  exit 0
fi
git -c user.name="${GIT_AUTHOR_NAME:-github-actions[bot]}" -c user.email="${GIT_AUTHOR_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
  commit --quiet -m "$message [skip ci]" -- "$file"
for attempt in 1 2 3; do
  # Another stage may have pushed its own stack file meanwhile: replay this commit on top.
  if git pull --quiet --rebase origin "$branch" && git push --quiet origin "HEAD:$branch"; then
    say "committed $file to $branch"
    exit 0
  fi
  say "push of $file failed (attempt $attempt of 3); retrying"
  sleep $((attempt * 5))
done
die "could not push $file to $branch; commit the lines the rollback or deploy printed by hand"
