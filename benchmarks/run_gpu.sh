#!/usr/bin/env bash
# One prepared GPU session (about 10 minutes on one H100/H200, no network needed):
#   1. train the MNIST model for TRAIN_MIN more minutes, warm-started from the shipped weights
#      (INIT=checkpoints/mnist; INIT= trains from scratch) with the recipe in its config.json,
#   2. record its classifier-FID (1,000 samples: DDIM η=0 at S=10,20,50,100; DDPM at 1,000 steps),
#   3. run the CUDA-parametrised tests, 4. time the GPU (benchmarks/gpu_speed.py),
#   5. if time is left: Table 1 with 2,000 samples a cell and Table 2.
# Results go to results/ and, with everything needed to ship the weights, to $OUT.
#   OUT=/tmp/gpu TRAIN_MIN=5 bash benchmarks/run_gpu.sh
# One command may run 10 minutes; with 15 minutes of device time, split it in two calls:
#   OUT=$OUT TRAIN_MIN=5 STAGES="train fid tests speed" bash benchmarks/run_gpu.sh
#   (copy model.safetensors + config.json from $OUT into checkpoints/mnist, then)
#   OUT=$OUT RUN=checkpoints/mnist STAGES=tables bash benchmarks/run_gpu.sh     # Tables 1 and 2
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
TRAIN_MIN=${TRAIN_MIN:-5}; BUDGET_S=${BUDGET_S:-570}; N_FID=${N_FID:-1000}; N_TABLE=${N_TABLE:-2000}
FID_STEPS=${FID_STEPS:-10,20,50,100,1000}
RUN=${RUN:-runs/mnist_gpu}; EXTRA=${EXTRA:-}; INIT=${INIT-checkpoints/mnist}
STAGES=${STAGES:-train fid tests speed tables}
want() { [[ " $STAGES " == *" $1 "* ]]; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DDIM_EDU_OFFLINE=1 MPLBACKEND=Agg
t0=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - t0) )); }
pack() { tar czf "$OUT/results.tgz" results 2>/dev/null; cp "$RUN/model.safetensors" "$RUN/config.json" "$OUT/" 2>/dev/null; true; }
# the resume state (raw weights, EMA, AdamW) is larger than one returned file may be: split it
pack_state() { cp "$RUN/state.json" "$OUT/"; split -b 15M "$RUN/state.safetensors" "$OUT/state.part."; }
log() { echo "== [$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/log.txt"; }

nvidia-smi -L 2>/dev/null
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if want train; then
log "1. training for $TRAIN_MIN min"
python3 -m ddim_edu.train ${INIT:+--init "$INIT"} --dataset mnist --steps ${STEPS:-200000} --batch-size 256 --dropout 0.1 --ema 0.9995 \
  --max-minutes "$TRAIN_MIN" --out "$RUN" --ckpt-every 0 --sample-every 0 --log-every 500 --no-progress $EXTRA \
  2>&1 | tee -a "$OUT/log.txt"
pack; pack_state
fi
if want fid; then
log "2. classifier-FID of $N_FID samples (recorded in config.json)"
python3 benchmarks/quality.py --checkpoint "$RUN" --n "$N_FID" --etas 0,1 --steps "$FID_STEPS" \
  --record-config --out results/fid_shipped_mnist 2>&1 | tee -a "$OUT/log.txt"
pack
fi
if want tests; then
log "3. CUDA tests"
[ "$(left)" -gt 40 ] && timeout $(( $(left) > 120 ? 90 : $(left) - 10 )) python3 -m pytest tests -q -x -k "cuda" --ignore=tests/test_plotting.py -p no:cacheprovider -o addopts="" 2>&1 | tail -5 | tee -a "$OUT/log.txt"
fi
if want speed; then
log "4. speed"
[ "$(left)" -gt 120 ] && timeout 100 python3 benchmarks/gpu_speed.py --checkpoint "$RUN" 2>&1 | tail -8 | tee -a "$OUT/log.txt"
pack
fi
if want tables; then
log "5. Table 1 (n=$N_TABLE) and Table 2, if time is left"
[ "$(left)" -gt 100 ] && timeout $(( $(left) - 45 )) python3 benchmarks/quality.py --checkpoint "$RUN" --n "$N_TABLE" 2>&1 | tail -30 | tee -a "$OUT/log.txt"
pack
[ "$(left)" -gt 40 ] && timeout $(( $(left) - 10 )) python3 benchmarks/reconstruction.py --checkpoint "$RUN" 2>&1 | tail -10 | tee -a "$OUT/log.txt"
pack
fi
log "done"
