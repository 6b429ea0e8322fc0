# Helpers for the command-line tests (sourced). Each test runs in a fresh temp dir.
set -uo pipefail
STRATA="${STRATA_BIN:?STRATA_BIN must point at the strata binary}"
WORK="$(mktemp -d /tmp/strata-cli-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
FAILURES=0
PASSES=0

# expect_exit CODE PATTERN -- command...: checks the exit code and that stderr+stdout match PATTERN.
expect_exit() {
  local code="$1" pattern="$2"
  shift 3
  local output rc
  output="$(timeout 120 "$@" 2>&1)"
  rc=$?
  if [ "$rc" -ne "$code" ] || ! grep -qE -- "$pattern" <<< "$output"; then
    echo "FAIL: '$*' -> exit $rc (want $code), output:"
    sed 's/^/    /' <<< "$output" | head -20
    echo "    (wanted a line matching: $pattern)"
    FAILURES=$((FAILURES + 1))
  else
    PASSES=$((PASSES + 1))
  fi
}

check() {  # check DESCRIPTION -- command...: the command must succeed
  local what="$1"
  shift 2
  if "$@"; then PASSES=$((PASSES + 1)); else echo "FAIL: $what"; FAILURES=$((FAILURES + 1)); fi
}

finish() {
  echo "$PASSES passed, $FAILURES failed"
  [ "$FAILURES" -eq 0 ]
}
