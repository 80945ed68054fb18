#!/usr/bin/env bash
# Retrain the shipped MNIST model from scratch in one prepared GPU command (under 10 minutes on one
# H100/H200, no network): a recipe race, measured in full.
#   1. the recipes in RECIPES train side by side on the one GPU, TRAIN_MIN minutes each, the same
#      network as today's model (UNet 32/64/128, dropout DROPOUT (default 0.1), EMA 0.9995, batch 256), keeping the EMA
#      weights every SNAP steps; the CUDA-parametrised tests run beside them;
#   2. the training curve of every run (benchmarks/training_curve.py: KID and classifier-FID of
#      N_CURVE DDIM samples at S = 10, 20, 50; L_simple on training and on held-out digits), with
#      the shipped weights as the first run's baseline; the best point of all runs (the lowest
#      η = 0 KID summed over S, training_curve.py --best) is the candidate to ship;
#   3. the candidate: Table 1 (N_TABLE samples a cell; one process per η, side by side, merged
#      afterwards by quality.py --merge), η = 0 and 1 on the quadratic τ, and Table 2 with class survival; beside it, for every run's own best
#      point and the shipped model: KID at S = 10, 20, 50 for η = 0 and 1 (N_KID samples, the same
#      x_T for all; each run's also minus the shipped model's, with the paired standard error) and class survival of the 500 held-out digits after encode -> decode at S = 10, 20, 50.
# Everything lands in results/retrain_mnist/ and comes back in $OUT/results.tgz, with the candidate's
# weights and config.json (ready to ship) and every other run's best weights as $OUT/<recipe>.safetensors.
#   OUT=/tmp/gpu bash benchmarks/retrain_gpu.sh
# STAGES picks the steps (default "train curve measure"). When a device session is too short to train
# a long run and measure it too, train and take the curve on the GPU (the candidate's weights and
# config.json come back in $OUT), then measure on any machine with SHIP naming the folder they are in:
#   RACE=minsnr_cos COS_STEPS=14000 TRAIN_MIN=8 BUDGET_S=570 CURVE_LEAVE=0 SNAP=2000 N_CURVE=500 \
#     CURVE_CELLS=0:10 STAGES="train curve" OUT=/tmp/gpu bash benchmarks/retrain_gpu.sh
#   mkdir -p runs/ship && cp /tmp/gpu/model.safetensors /tmp/gpu/config.json runs/ship/   # then, on a CPU:
#   RACE=minsnr_cos SHIP=runs/ship STAGES=measure BUDGET_S=30000 N_KID=2000 N_TABLE=2000 TABLE_STEPS=10,20,50 \
#     QUAD_STEPS=10 TABLE2_STEPS=10,20,50 NO_TESTS=1 OUT=/tmp/cpu bash benchmarks/retrain_gpu.sh
# A dry run on a CPU (plumbing only; nothing it prints means anything):
#   OUT=/tmp/dry BUDGET_S=1200 TRAIN_MIN=0.2 BATCH=4 SNAP=2 STEPS=3 N_CURVE=8 LOSS_REPEATS=1 N_KID=8 N_TABLE=8 \
#     CURVE_CELLS=0:2 TABLE_STEPS=2,3 QUAD_STEPS=2 TABLE2_STEPS=2,3 RECON_STEPS=2 KID_STEPS=2 NO_TESTS=1 \
#     bash benchmarks/retrain_gpu.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
TRAIN_MIN=${TRAIN_MIN:-4.0}; BUDGET_S=${BUDGET_S:-540}; BATCH=${BATCH:-256}; SNAP=${SNAP:-1000}; STEPS=${STEPS:-200000}
DROPOUT=${DROPOUT:-0.1}         # dropout of every run (0.1: the shipped recipe)
COS_STEPS=${COS_STEPS:-12000}   # minsnr_cos: the step where its cosine reaches lr 0, and its last step
STAGES=" ${STAGES:-train curve measure} "
stage() { [[ "$STAGES" == *" $1 "* ]]; }
N_CURVE=${N_CURVE:-1000}; LOSS_REPEATS=${LOSS_REPEATS:-4}; N_KID=${N_KID:-2000}; N_TABLE=${N_TABLE:-2000}
CURVE_CELLS=${CURVE_CELLS:-0:10,0:20,0:50}; KID_STEPS=${KID_STEPS:-10,20,50}; RECON_STEPS=${RECON_STEPS:-10,20,50}
TABLE_STEPS=${TABLE_STEPS:-10,20,50,100,1000}; QUAD_STEPS=${QUAD_STEPS:-10,20,50}
TABLE2_STEPS=${TABLE2_STEPS:-10,20,50,100,200,500,1000}
CURVE_LEAVE=${CURVE_LEAVE:-150}   # seconds the curves leave for step 3
R=results/retrain_mnist; mkdir -p "$R"
# name -> the options that differ from the common recipe (one change at a time)
declare -A RECIPES=(
  [lsimple]="--lr 1e-3"
  [minsnr]="--lr 1e-3 --loss-weighting min_snr --min-snr-gamma 5"
  [minsnr_shift1]="--lr 1e-3 --loss-weighting min_snr --min-snr-gamma 5 --augment-shift 1"
  # min-SNR-5 with the lr decayed to 0 by a cosine over COS_STEPS steps: the decay closed most of the gap
  # in classifier-FID to the shipped model when it ended the continued min-SNR run (results/retrain_mnist)
  [minsnr_cos]="--lr 1e-3 --loss-weighting min_snr --min-snr-gamma 5 --lr-schedule cosine --steps $COS_STEPS"
)
NAMES=(${RACE:-lsimple minsnr minsnr_shift1})   # RACE=minsnr: one recipe, the whole GPU to itself
# one CPU thread a process: a dozen processes at PyTorch's default of one thread per core starved each
# other (Table 1 and the curves measured next to nothing in minutes)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DDIM_EDU_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
t0=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - t0) )); }
log() { echo "== [$(( $(date +%s) - t0 )) s] $*" | tee -a "$OUT/log.txt"; }
SHIP=${SHIP:-}       # the candidate to ship: set by the curve stage, or given for STAGES=measure
pack() {
  for n in "${NAMES[@]}"; do [ -f "runs/race/$n/config.json" ] && cp "runs/race/$n/config.json" "$R/config_$n.json"; done
  tar czf "$OUT/results.tgz" results/retrain_mnist 2>/dev/null
  [ -n "$SHIP" ] && cp "$SHIP/model.safetensors" "$SHIP/config.json" "$OUT/" 2>/dev/null; true
}
best_of() { python3 benchmarks/training_curve.py --pick "$R/curve_$1.json" --run "runs/race/$1" 2>/dev/null || echo "runs/race/$1"; }

nvidia-smi -L 2>/dev/null
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"
if stage train && [ -z "${NO_TESTS:-}" ]; then
  log "CUDA tests (beside the training)"
  # tests/course and tests/viz/test_plotting.py import nbformat / ipywidgets, which a bare GPU image lacks
  timeout 200 python3 -m pytest tests -q -k cuda --continue-on-collection-errors -p no:cacheprovider -o addopts="" \
    --ignore=tests/course --ignore=tests/viz/test_plotting.py > "$R/cuda_tests.txt" 2>&1 &
fi

if stage train; then
log "1. training ${NAMES[*]} side by side, $TRAIN_MIN min each at batch $BATCH"
pids=()
for n in "${NAMES[@]}"; do
  python3 -m ddim_edu.train --dataset mnist --steps "$STEPS" --batch-size "$BATCH" --dropout "$DROPOUT" --ema 0.9995 --seed 1 \
    --max-minutes "$TRAIN_MIN" --out "runs/race/$n" --ckpt-every 0 --sample-every 0 --log-every 500 \
    --snapshot-every "$SNAP" --no-progress ${RECIPES[$n]} > "$R/train_$n.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for n in "${NAMES[@]}"; do echo "-- $n: ${RECIPES[$n]}"; tail -3 "$R/train_$n.log"; done | tee -a "$OUT/log.txt"
pack
stage curve || stage measure || { SHIP=runs/race/${NAMES[-1]}; pack; }     # its last weights come back
fi

if stage curve; then
log "2. training curves (n = $N_CURVE, cells $CURVE_CELLS)"
pids=()
for n in "${NAMES[@]}"; do
  before=""; [ "$n" = "${NAMES[0]}" ] && before="--before checkpoints/mnist"
  timeout $(( $(left) - CURVE_LEAVE > 60 ? $(left) - CURVE_LEAVE : 60 )) python3 benchmarks/training_curve.py --run "runs/race/$n" $before \
    --n "$N_CURVE" --cells "$CURVE_CELLS" --loss-repeats "$LOSS_REPEATS" --out "$R/curve_$n" > "$R/curve_$n.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for n in "${NAMES[@]}"; do echo "-- $n"; grep "^step" "$R/curve_$n.log"; done | tee -a "$OUT/log.txt"
curves=(); for n in "${NAMES[@]}"; do [ -f "$R/curve_$n.json" ] && curves+=("$R/curve_$n.json"); done
SHIP=$(python3 benchmarks/training_curve.py --best "${curves[@]}" || echo "runs/race/${NAMES[-1]}")
log "the candidate to ship: $SHIP"
pack
fi

stage measure || { log "done (stages:$STAGES)"; exit 0; }
[ -z "$SHIP" ] && SHIP=$(best_of "${NAMES[-1]}")      # no curve this call: the last run's best point, or its end

log "3. Table 1 and 2 of $SHIP; KID and class survival of every run's best point and the shipped model"
pids=()
end=$(( $(left) - 10 ))
for e in 0 0.2 0.5 1 hat; do
  timeout $end python3 benchmarks/quality.py --checkpoint "$SHIP" --n "$N_TABLE" --etas "$e" --steps "$TABLE_STEPS" \
    --out "$R/table1_eta$e" > "$R/table1_eta$e.log" 2>&1 & pids+=($!)
done
timeout $end python3 benchmarks/quality.py --checkpoint "$SHIP" --n "$N_TABLE" --etas 0,1 --steps "$QUAD_STEPS" \
  --skip quadratic --out "$R/table1_quadratic" > "$R/table1_quadratic.log" 2>&1 & pids+=($!)
timeout $end python3 benchmarks/reconstruction.py --checkpoint "$SHIP" --steps "$TABLE2_STEPS" --out "$R/table2" \
  > "$R/table2.log" 2>&1 & pids+=($!)
for n in shipped "${NAMES[@]}"; do
  if [ "$n" = shipped ]; then ck=checkpoints/mnist; else ck=$(best_of "$n"); fi
  [ -f "$ck/config.json" ] || ck=$SHIP          # measuring elsewhere: only the candidate came along
  echo "$n $ck" >> "$R/best_points.txt"
  against=(); [ "$n" != shipped ] && against=(--against checkpoints/mnist)   # this run minus shipped, paired
  timeout $end python3 benchmarks/kid_table.py --checkpoint "$ck" --n "$N_KID" --steps "$KID_STEPS" --batch 1000 \
    "${against[@]}" --out "$R/kid_$n" > "$R/kid_$n.log" 2>&1 & pids+=($!)
  timeout $end python3 benchmarks/reconstruction.py --checkpoint "$ck" --steps "$RECON_STEPS" --out "$R/recon_$n" \
    > "$R/recon_$n.log" 2>&1 & pids+=($!)
done
wait "${pids[@]}"
cat "$R/best_points.txt" | tee -a "$OUT/log.txt"
for f in "$R"/kid_*.log "$R"/recon_*.log "$R"/table*.log; do echo "-- $f"; grep -v "^recorded\|^wrote" "$f" | tail -12; done \
  | tee -a "$OUT/log.txt"
[ -f "$R/cuda_tests.txt" ] && tail -3 "$R/cuda_tests.txt" | tee -a "$OUT/log.txt"
# the other runs' best weights come back too, in case the measurements favour another
for n in "${NAMES[@]}"; do ck=$(best_of "$n"); [ "$ck" != "$SHIP" ] && [ -f "$ck/model.safetensors" ] && cp "$ck/model.safetensors" "$OUT/$n.safetensors"; done
pack
log "done"
