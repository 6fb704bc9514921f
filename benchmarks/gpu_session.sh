#!/usr/bin/env bash
# One prepared call on a lent GPU machine (the device tool), about 9 minutes; every step bounded by `timeout`:
#   1. `humanparse bench`: SST resnet50 and the starter network at 512x512, bf16 + channels-last + torch.compile,
#      batch 8: inference latency / images/s, training images/s, fraction of the bf16 peak (docs/benchmarks.md "GPU")
#   2. the training step WITH the SST modules (MSA/MSE/MST/SCR) of the resnet50 network, bf16, 512 px, batch 8,
#      and its fraction of peak (benchmarks/bench_sst_overhead.py)
#   3. the starter recipe (configs/starter/universal_lite2.yaml) trained on the GPU for at most 4 minutes and
#      scored on the held-out split (docs/results.md, "GPU run")
# Prepare here (no GPU needed):  python scripts/pack_for_device.py      (writes .device/, git-ignored)
# Then:                          run(command="bash benchmarks/gpu_session.sh", carry=[".device"], timeout_s=590)
# A dry run of the plumbing on this CPU (tiny sizes, a few steps): DEVICE=cpu SMOKE=1 bash benchmarks/gpu_session.sh
set -u
OUT=${OUT:-/tmp/gpu_session}
DEVICE=${DEVICE:-cuda}
if [ "${SMOKE:-0}" = 1 ]; then SIZE=128 BENCH="--warmup 1 --repeat 1" STEPS=2 EXTRA=""
else SIZE=512 BENCH="--warmup 3 --repeat 20" STEPS=2000 EXTRA="--compile"; fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
exec > >(tee "$OUT/log.txt") 2>&1
if [ "${SMOKE:-0}" != 1 ]; then  # the GPU image's python3 is 3.12; the smoke run uses this environment's packages
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD HUMANPARSE_DATA=$PWD/.device/data
nvidia-smi -L 2>/dev/null; python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"
START=$(date +%s)
echo "== 1. humanparse bench (bf16, channels-last, compile, batch 8, 512)"
timeout 140 python3 -m humanparse bench configs/sst_r50.yaml configs/starter/universal_lite2.yaml --device $DEVICE \
    --precision bf16 --channels-last $EXTRA --batch 8 --size $SIZE --mode both $BENCH \
    --json --out "$OUT/bench_bf16_compile.json"
echo "== 2. SST training step (modules on), resnet50, bf16, 512, batch 8  [$(( $(date +%s) - START )) s]"
timeout 80 python3 benchmarks/bench_sst_overhead.py --config configs/sst_r50.yaml \
    --domains-from configs/starter/universal_lite2.yaml --crop $SIZE --batch 8 --steps $STEPS --warmup 1 \
    --device $DEVICE --precision bf16 --channels-last --out "$OUT/sst_train_step.json"
echo "== 3. starter recipe on the GPU, at most 240 s of training  [$(( $(date +%s) - START )) s]"
timeout 240 python3 -m humanparse train configs/starter/universal_lite2.yaml \
    model.backbone.pretrained=.device/tf_efficientnet_lite2_imagenet.safetensors \
    train.steps=$STEPS train.num_workers=8 train.eval_every=0 train.checkpoint_every=250 train.log_every=50 \
    --device $DEVICE --output-dir "$OUT/starter_gpu"
CKPT="$OUT/starter_gpu/model.safetensors"; [ -f "$CKPT" ] || CKPT="$OUT/starter_gpu/last.pt"
echo "== held-out eval of $CKPT  [$(( $(date +%s) - START )) s]"
timeout 60 python3 -m humanparse eval "$CKPT" --config configs/starter/universal_lite2.yaml --device $DEVICE --json \
    > "$OUT/starter_gpu_eval.json"
cat "$OUT/starter_gpu_eval.json"
rm -f "$OUT"/starter_gpu/*.pt  # training state is large; the log, metrics and the inference weights come back
echo "== done  [$(( $(date +%s) - START )) s]"
