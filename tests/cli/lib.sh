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
  # -k: Debian's mpirun can deadlock in PMIx_server_finalize after a rank was killed (seen in
  # test_checkpoint_mpi's checkpoint-kill case: ranks gone, mpirun stuck ignoring SIGTERM), so a
  # command still alive 10 s after the TERM is killed instead of hanging ctest for 15 minutes.
  output="$(timeout -k 10 120 "$@" 2>&1)"
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

# bytes_match DIR: every step's counted bytes equal the plan's prediction.
bytes_match() {
  /usr/bin/python3 - "$1" << 'PY'
import json, sys
d = sys.argv[1]
pred = json.load(open(d + "/plan.json"))["predicted"]["bytes_per_step"]
steps = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"loss"' in l]
bad = []
for s in steps:
    for k, v in pred.items():
        got = s["bytes"][k]
        if abs(got - v) > 1e-12 * max(abs(v), 1.0):
            bad.append(f"step {s['step']}: {k} counted {got!r}, predicted {v!r}")
print("\n".join(bad) if bad else f"bytes: {len(steps)} steps match {pred}")
sys.exit(1 if bad else 0)
PY
}
