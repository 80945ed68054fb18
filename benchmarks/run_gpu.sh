#!/usr/bin/env bash
# One prepared GPU session: one command of under 10 minutes on one H100/H200, no network needed.
#   1. train the MNIST model TRAIN_MIN more minutes, warm-started from the shipped weights
#      (INIT=checkpoints/mnist; INIT= trains from scratch), while the CUDA-parametrised tests
#      run beside it;
#   2. Table 1: classifier-FID of N_TABLE samples a cell, η ∈ {0, 0.2, 0.5, 1, σ̂} × S ∈ {10, 20,
#      50, 100, 1000}, recorded in the run's config.json; then η ∈ {0, 1} on the quadratic τ;
#   3. speed (benchmarks/gpu_speed.py); 4. Table 2 (reconstruction), while time is left.
# Results go to results/ and, with everything needed to ship or resume the run, to $OUT.
#   OUT=/tmp/gpu TRAIN_MIN=4 bash benchmarks/run_gpu.sh
#   STAGES="tables speed" RUN=checkpoints/mnist bash benchmarks/run_gpu.sh    # measure only
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
TRAIN_MIN=${TRAIN_MIN:-3.8}; BUDGET_S=${BUDGET_S:-575}; N_TABLE=${N_TABLE:-2000}; BATCH=${BATCH:-1024}
RUN=${RUN:-runs/mnist_gpu}; EXTRA=${EXTRA:-}; INIT=${INIT-checkpoints/mnist}
# a dry run on a CPU shrinks these: TABLE_STEPS=2,3 SPEED_ARGS="--batch 4 --steps 3 --no-compile" RECON_ARGS=--quick
TABLE_STEPS=${TABLE_STEPS:-10,20,50,100,1000}; QUAD_STEPS=${QUAD_STEPS:-10,20,50}
SPEED_ARGS=${SPEED_ARGS:-}; RECON_ARGS=${RECON_ARGS:-}
STAGES=${STAGES:-train tests tables speed recon}
want() { [[ " $STAGES " == *" $1 "* ]]; }
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DDIM_EDU_OFFLINE=1 MPLBACKEND=Agg
t0=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - t0) )); }
pack() { tar czf "$OUT/results.tgz" results 2>/dev/null; cp "$RUN/model.safetensors" "$RUN/config.json" "$OUT/" 2>/dev/null; true; }
# the resume state (raw weights, EMA, AdamW) is larger than one returned file may be: split it
pack_state() { cp "$RUN/state.json" "$OUT/" 2>/dev/null; split -b 15M "$RUN/state.safetensors" "$OUT/state.part." 2>/dev/null; true; }
log() { echo "== [$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/log.txt"; }

nvidia-smi -L 2>/dev/null
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if want tests; then
  log "CUDA tests (beside the training)"
  # test_plotting and test_classroom import ipywidgets / nbformat, which a bare GPU image may lack
  timeout 240 python3 -m pytest tests -q -k cuda --continue-on-collection-errors -p no:cacheprovider -o addopts="" \
    --ignore=tests/test_plotting.py --ignore=tests/test_classroom.py > "$OUT/tests.txt" 2>&1 &
  tests_pid=$!
fi
if want train; then
  log "1. training for $TRAIN_MIN min at batch $BATCH"
  python3 -m ddim_edu.train ${INIT:+--init "$INIT"} --dataset mnist --steps ${STEPS:-200000} --batch-size "$BATCH" \
    --dropout 0.1 --ema 0.9995 --max-minutes "$TRAIN_MIN" --out "$RUN" --ckpt-every 0 --sample-every 0 \
    --log-every 500 --no-progress $EXTRA 2>&1 | tee -a "$OUT/log.txt"
  pack; pack_state
fi
if want tests; then
  wait "$tests_pid"; tail -4 "$OUT/tests.txt" | tee -a "$OUT/log.txt"
fi
if want tables; then
  log "2. Table 1 (n=$N_TABLE), recorded in $RUN/config.json"
  [ "$(left)" -gt 120 ] && timeout $(( $(left) - 20 )) python3 benchmarks/quality.py --checkpoint "$RUN" --n "$N_TABLE" \
    --steps "$TABLE_STEPS" --record-config --out results/table1_mnist 2>&1 | tee -a "$OUT/log.txt"
  pack
  log "2b. η = 0 and 1 on the quadratic τ"
  [ "$(left)" -gt 60 ] && timeout $(( $(left) - 20 )) python3 benchmarks/quality.py --checkpoint "$RUN" --n "$N_TABLE" \
    --etas 0,1 --steps "$QUAD_STEPS" --skip quadratic --out results/table1_mnist_quadratic 2>&1 | tee -a "$OUT/log.txt"
  pack
fi
if want speed; then
  log "3. speed"
  [ "$(left)" -gt 60 ] && timeout $(( $(left) - 10 )) python3 benchmarks/gpu_speed.py --checkpoint "$RUN" --train-batch 256 $SPEED_ARGS \
    2>&1 | tee -a "$OUT/log.txt"
  pack
fi
if want recon; then
  log "4. Table 2"
  [ "$(left)" -gt 40 ] && timeout $(( $(left) - 5 )) python3 benchmarks/reconstruction.py --checkpoint "$RUN" $RECON_ARGS 2>&1 | tee -a "$OUT/log.txt"
  pack
fi
log "done"
