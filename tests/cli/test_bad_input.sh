#!/usr/bin/env bash
# Bad input of every kind: one clear line, exit code 2, no crash, no hang, nothing written.
source "$(dirname "$0")/lib.sh"

"$STRATA" model gpt --layers 1 --hidden 16 --heads 2 --seq 8 --vocab 32 -o model.h5 > /dev/null
"$STRATA" model gpt --layers 1 --hidden 16 --heads 2 --seq 8 --vocab 32 --dtype f64 -o model64.h5 > /dev/null
"$STRATA" data synthetic --vocab 32 --seq 8 --count 16 -o data.h5 > /dev/null
"$STRATA" data synthetic --vocab 32 --seq 4 --count 16 -o data_seq4.h5 > /dev/null
"$STRATA" data synthetic --vocab 64 --seq 8 --count 16 -o data_v64.h5 > /dev/null

# --- model command
expect_exit 2 "heads" -- "$STRATA" model gpt --layers 1 --hidden 10 --heads 3 --seq 8 --vocab 32 -o bad.h5
expect_exit 2 "overflows int64" -- "$STRATA" model gpt --layers 1 --hidden 2147483648 --heads 1 --seq 8 --vocab 8 -o bad.h5
expect_exit 2 "must be in" -- "$STRATA" model gpt --layers 1 --hidden 3037000500 --heads 1 --seq 8 --vocab 8 -o bad.h5
expect_exit 2 "memory" -- "$STRATA" model gpt --layers 1000 --hidden 65536 --heads 64 --seq 8 --vocab 32 -o bad.h5
expect_exit 2 "dtype" -- "$STRATA" model gpt --layers 1 --hidden 16 --heads 2 --seq 8 --vocab 32 --dtype f16 -o bad.h5
expect_exit 2 "layers" -- "$STRATA" model gpt --hidden 16 --heads 2 --seq 8 --vocab 32 -o bad.h5
expect_exit 2 "--attention: 'flash'" -- "$STRATA" model gpt --layers 1 --hidden 16 --heads 2 --seq 8 --vocab 32 --attention flash -o bad.h5
check "no partial model file" -- test ! -e bad.h5 -a ! -e bad.h5.tmp

# --- data command
expect_exit 2 "missing.txt" -- "$STRATA" data bytes --input missing.txt --seq 8 -o bad.h5
printf 'abc' > short.txt
expect_exit 2 "short.txt" -- "$STRATA" data bytes --input short.txt --seq 8 -o bad.h5
check "no partial dataset file" -- test ! -e bad.h5 -a ! -e bad.h5.tmp

# --- inspect: missing, empty, text, truncated, other formats
: > empty.h5
echo "not hdf5" > text.h5
head -c 2000 model.h5 > truncated.h5
expect_exit 2 "nothing.h5" -- "$STRATA" inspect nothing.h5
expect_exit 2 "empty.h5" -- "$STRATA" inspect empty.h5
expect_exit 2 "text.h5" -- "$STRATA" inspect text.h5
expect_exit 2 "truncated.h5" -- "$STRATA" inspect truncated.h5
expect_exit 0 "parameters" -- "$STRATA" inspect model.h5
expect_exit 0 "vocab 32" -- "$STRATA" inspect data.h5

# --- train: config problems, reported together with file and line, nothing written
cat > good.yaml <<YAML
model: {path: model.h5}
data: {path: data.h5}
train: {steps: 2, global_batch: 4, shuffle: false}
output: {dir: out_good}
YAML
cat > bad.yaml <<YAML
model: {path: model.h5}
data: {path: data.h5}
train:
  steps: -3
  global_batch: many
  stpes: 4
output: {dir: out_bad}
YAML
expect_exit 2 "bad.yaml:4: train.steps" -- "$STRATA" train bad.yaml
expect_exit 2 "bad.yaml:5: train.global_batch" -- "$STRATA" train bad.yaml
expect_exit 2 "bad.yaml:6: train.stpes" -- "$STRATA" train bad.yaml
check "bad config writes nothing" -- test ! -e out_bad
expect_exit 2 "missing.yaml" -- "$STRATA" train missing.yaml
expect_exit 2 "train.micro_batches" -- "$STRATA" train good.yaml --set train.micro_batches=3
expect_exit 2 "nope" -- "$STRATA" train good.yaml --set model.path=nope.h5
expect_exit 2 "strata-dataset" -- "$STRATA" train good.yaml --set model.path=data.h5
expect_exit 2 "seq" -- "$STRATA" train good.yaml --set data.path=data_seq4.h5
expect_exit 2 "vocab" -- "$STRATA" train good.yaml --set data.path=data_v64.h5
expect_exit 2 "truncated.h5" -- "$STRATA" train good.yaml --set data.path=truncated.h5
expect_exit 2 "f64" -- "$STRATA" train good.yaml --set train.dtype=f64
expect_exit 2 "cuda" -- "$STRATA" train good.yaml --set cluster.backend=cuda
expect_exit 2 "preset" -- "$STRATA" train good.yaml --set cluster.preset=no-such-cluster
expect_exit 2 "cluster.hosts" -- "$STRATA" train good.yaml --set cluster.hosts=2
check "rejected runs write nothing" -- test ! -e out_good

# --- a model file whose format version is newer than this binary
if /usr/bin/python3 -c "import h5py" 2> /dev/null; then
  cp model.h5 newer.h5
  /usr/bin/python3 -c "import h5py; f = h5py.File('newer.h5', 'r+'); f.attrs['version'] = 99; f.close()"
  expect_exit 2 "newer.h5.*version" -- "$STRATA" inspect newer.h5
  cp model.h5 badshape.h5
  /usr/bin/python3 - << 'PY'
import h5py, numpy as np
with h5py.File("badshape.h5", "r+") as f:
    del f["params/transformer.wpe.weight"]
    f["params/transformer.wpe.weight"] = np.zeros((9, 16), dtype=np.float32)
PY
  expect_exit 2 "transformer.wpe.weight" -- "$STRATA" train good.yaml --set model.path=badshape.h5
  # a graph whose meta names an attention form this binary does not know
  cp model.h5 badmeta.h5
  /usr/bin/python3 - << 'PY'
import h5py
with h5py.File("badmeta.h5", "r+") as f:
    text = f["graph"][()].decode().replace('"attention":"fused"', '"attention":"flash"')
    del f["graph"]
    f["graph"] = text.encode()
PY
  expect_exit 2 "badmeta.h5.*attention.*'flash'" -- "$STRATA" train good.yaml --set model.path=badmeta.h5
else
  echo "SKIP: /usr/bin/python3 has no h5py (version and shape cases)"
fi

# --- a good run for contrast: exit 0 and outputs present
expect_exit 0 "done" -- "$STRATA" train good.yaml
check "metrics written" -- test -s out_good/metrics.jsonl
finish
