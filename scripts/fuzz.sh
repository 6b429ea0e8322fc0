#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang, ASan + UBSan, into build-fuzz) and runs each
# for a fixed number of inputs and seed on a scratch copy of its committed corpus (tests/fuzz/
# corpus/<name>/): repeatable, and the repository is never written. One summary line per target.
# Exit 0: all clean; 1: a crash, leak, timeout or OOM (input printed as base64) or a failed build;
# 77: no libFuzzer. Env: STRATA_FUZZ_RUNS (inputs per target, 20000), STRATA_FUZZ_JOBS (build -j, 2).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${STRATA_FUZZ_RUNS:-20000}
jobs=${STRATA_FUZZ_JOBS:-2}
build=$root/build-fuzz
# target name, corpus folder, max input bytes (the graph seeds are up to 12 KB)
targets=("fuzz_config config 4096" "fuzz_graph_json graph_json 16384" "fuzz_plan_json plan_json 65536")

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz.XXXXXX")
keep_work=0
cleanup() { if [[ $keep_work == 0 ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# libFuzzer needs clang and its runtime (libclang-rt-14-dev, which --no-install-recommends skips).
probe='extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }'
if ! command -v clang++ >/dev/null ||
   ! echo "$probe" | clang++ -x c++ -fsanitize=fuzzer,address - -o "$work/probe" 2>/dev/null; then
  echo "fuzz: SKIP: clang++ with libFuzzer not available (apt-get install clang libclang-rt-14-dev)"
  exit 77
fi

t0=$EPOCHREALTIME
cd "$root"
if ! cmake --preset fuzz >"$work/configure.log" 2>&1; then
  tail -n 40 "$work/configure.log"
  echo "fuzz: FAILED: cmake --preset fuzz"
  exit 1
fi
names=()
for t in "${targets[@]}"; do names+=("${t%% *}"); done
if ! cmake --build "$build" --target "${names[@]}" -j "$jobs" >"$work/build.log" 2>&1; then
  grep -E "error|Error" "$work/build.log" | head -n 40 || tail -n 40 "$work/build.log"
  echo "fuzz: FAILED: building ${names[*]}"
  exit 1
fi
echo "fuzz: built ${names[*]} in $(since "$t0") s"

failed=0
for t in "${targets[@]}"; do
  read -r name corpus max_len <<<"$t"
  dir=$work/$name
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$root/tests/fuzz/corpus/$corpus/"* "$dir/corpus/"
  seeds=$(ls "$dir/corpus" | wc -l)
  start=$EPOCHREALTIME
  rc=0
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$build/tests/fuzz/$name" -runs="$runs" -seed=1 -max_len="$max_len" -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" "$dir/corpus" \
    >"$dir/log" 2>&1 || rc=$?
  secs=$(since "$start")
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -n 1 || true)
  cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$done_line")
  executed=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$dir/log" | tail -n 1)
  artifacts=$(ls "$dir/artifacts" | wc -l)
  if [[ $rc == 0 && $artifacts == 0 ]]; then
    echo "fuzz: $name: OK: ${executed:-$runs} runs in ${secs} s (seed 1, max_len $max_len," \
         "$seeds seeds -> $(ls "$dir/corpus" | wc -l) inputs, cov ${cov:-?})"
  else
    failed=1
    keep_work=1
    summary=$(grep -E '^SUMMARY|ERROR: libFuzzer|ERROR: AddressSanitizer|runtime error' \
              "$dir/log" | head -n 1 || true)
    echo "fuzz: $name: FAILED (exit $rc) after ${secs} s: ${summary:-see log}"
    # The report from its first line to the sanitizer's summary (stack included), else the tail.
    report=$(sed -n '/ERROR: /,/^SUMMARY: /p' "$dir/log" | head -n 40)
    [[ -n $report ]] || report=$(tail -n 30 "$dir/log")
    sed 's/^/  | /' <<<"$report"
    for a in "$dir/artifacts/"*; do
      [[ -f $a ]] || continue
      echo "  input $(basename "$a") (base64): $(base64 -w0 "$a")"
      echo "  replay: $build/tests/fuzz/$name $a"
    done
    echo "  log and inputs kept in $dir"
  fi
done
echo "fuzz: total $(since "$t0") s"
exit "$failed"
