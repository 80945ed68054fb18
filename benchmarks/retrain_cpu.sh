#!/usr/bin/env bash
# Retrain the shipped MNIST model on a CPU, over as many sessions as it takes: every call continues
# where the last one stopped (the run resumes from its checkpoint; a measurement already written
# is not repeated), so it can be killed at any time and called again.
#   1. training: a warm start from INIT (by default the min-SNR-5 run of 8,268 steps at batch 256,
#      results/retrain_mnist/README.md) with the same recipe and a cosine decay of the learning
#      rate to 0 over STEPS more steps, checkpointed every CKPT steps, the EMA weights kept every
#      SNAP steps; TRAIN_MIN minutes a call at most. INIT=none trains from scratch instead, with
#      retrain_gpu.sh's recipe minsnr_cos (the shipped network, min-SNR-5, a cosine over all STEPS,
#      bf16 autocast as on the GPU);
#   2. once the run has all its steps, its last weights: the 500 held-out digits' class survival after
#      encode -> decode at S = 10, 20, 50 (minutes: look at it first), then KID at S = 10, 20, 50 for η = 0 and 1
#      (N_KID samples a cell), each cell beside the shipped model's on the same x_T and noise, with the
#      standard error of the paired difference (benchmarks/reconstruction.py, kid_table.py --against);
#      ETAS=0 measures DDIM's cells only (half the time);
#   3. its training curve (L_simple on training and held-out digits at every snapshot, and the KID
#      of N_CURVE DDIM-10 samples);
#   4. the shipped model measured the same way, unless $R/kid_shipped.json and recon_shipped.json
#      hold it already (the same x_T and noise seed, measured on an H200: the samplers are
#      deterministic given them, so only rounding differs); MEASURE_SHIPPED=1 measures it anyway.
# Everything lands in results/retrain_mnist/${NAME}_*; each measuring process gets THREADS threads.
#   TRAIN_MIN=100 bash benchmarks/retrain_cpu.sh          # one session's worth; call again to go on
#   INIT=none STEPS=12000 RUN=/root/retrain/minsnr_cos NAME=scratch bash benchmarks/retrain_cpu.sh
#      (from scratch, with bf16 autocast: about 8 hours of an idle 2-core CPU that has AMX, 0.43 steps/s
#      with dropout, min-SNR, the EMA and checkpoints; twice that in float32. A run folder outside the
#      work tree outlives a fresh checkout of it when the machine is kept)
#   INIT=none STEPS=7000 SNAP=1000 FLOOR=0.2 RUN=runs/floor NAME=floor bash benchmarks/retrain_cpu.sh
#      (the same from scratch with a floor of 0.2 under the min-SNR weight, so that ε near t = 0 is
#      trained, and a cosine that ends at 7,000 steps, before the held-out loss of the 12,000-step run rose)
#   INIT=none STEPS=12000 SNAP=1000 DROPOUT=0.3 RUN=runs/drop3 NAME=drop3 bash benchmarks/retrain_cpu.sh
#      (the shipped recipe with more dropout (default 0.1), against fitting the 4,500 digits better than new ones)
#   INIT=none STEPS=12000 SNAP=1000 DROPOUT=0.2 RUN=runs/drop2 NAME=drop2 bash benchmarks/retrain_cpu.sh
#      (dropout 0.3 generalised but its samples were further from the digits: the middle of the two)
#   cp -r runs/drop2 runs/drop2x && python -m ddim_edu.train --resume runs/drop2x --steps 20000 --device cpu
#   INIT=none RUN=runs/drop2x NAME=drop2x bash benchmarks/retrain_cpu.sh
#      (the dropout-0.2 run continued from 12,000 steps to 20,000, its cosine stretched over the new total;
#      the first command sets the new total, every later call of the second continues it, then measures it)
#   python -m ddim_edu.train --init results/retrain_mnist/drop2_weights --steps 2000 --lr 3.5e-4 --lr-warmup 100 \
#     --lr-schedule cosine --bf16 --ckpt-every 50 --snapshot-every 1000 --sample-every 0 --no-progress --device cpu --out runs/drop2c
#   INIT=results/retrain_mnist/drop2_weights RUN=runs/drop2c NAME=drop2c ETAS=0 bash benchmarks/retrain_cpu.sh
#      (the dropout-0.2 run's kept weights, annealed again over 2,000 steps that fit one session: a fresh
#      optimizer, the cosine from 3.5 × 10⁻⁴; --init keeps the run's other options, dropout 0.2 among them)
#   RUN=<a finished run's folder> NAME=<its name> bash benchmarks/retrain_cpu.sh
#      (a finished run needs no training state: a folder with its config.json, model.safetensors and
#      snapshots/ is measured as it is, so a run kept in the repository outlives the machine it ran on)
# Results are named $R/${NAME}_* (default NAME=cpu: the warm-started run).
# A dry run (plumbing only; nothing it prints means anything):
#   RUN=/tmp/dry_run R=/tmp/dry_results STEPS=4 CKPT=2 SNAP=2 BATCH=4 N_CURVE=8 N_KID=8 KID_STEPS=2 \
#     RECON_STEPS=2 RECON_N=8 bash benchmarks/retrain_cpu.sh
set -u
cd "$(dirname "$0")/.."
INIT=${INIT:-runs/retrain/minsnr_8268}; RUN=${RUN:-runs/retrain/cpu_cos3000}; R=${R:-results/retrain_mnist}
NAME=${NAME:-cpu}; FLOOR=${FLOOR:-0}; DROPOUT=${DROPOUT:-0.1}
STEPS=${STEPS:-3000}; BATCH=${BATCH:-256}; CKPT=${CKPT:-50}; SNAP=${SNAP:-500}; TRAIN_MIN=${TRAIN_MIN:-100}
N_CURVE=${N_CURVE:-500}; N_KID=${N_KID:-2000}; KID_STEPS=${KID_STEPS:-10,20,50}; ETAS=${ETAS:-0,1}
RECON_STEPS=${RECON_STEPS:-10,20,50}; RECON_N=${RECON_N:-500}; THREADS=${THREADS:-2}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DDIM_EDU_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=$THREADS
mkdir -p "$R"
log() { echo "== [$(date -u +%H:%M:%S)] $*"; }
# the run's step and the step it trains to (STEPS applies to a new run only; a resumed run keeps its own)
step_of() { python3 -c "import json, sys; c = json.load(open(sys.argv[1])); print(c['step'], c['training']['steps'])" \
  "$1/config.json" 2>/dev/null || echo "0 $STEPS"; }

read -r done_steps target <<< "$(step_of "$RUN")"
if [ -f "$RUN/config.json" ] && [ "$done_steps" -ge "$target" ]; then
  # a finished run needs no training state: its folder may hold only config.json, the weights and snapshots/
  log "1. $RUN has all its $target steps"
elif [ -f "$RUN/state.safetensors" ]; then
  log "1. resuming $RUN (step, of steps: $done_steps $target) for $TRAIN_MIN min at most"
  python3 -m ddim_edu.train --resume "$RUN" --max-minutes "$TRAIN_MIN" --device cpu >> "$R/${NAME}_train.log" 2>&1
elif [ "$INIT" = none ]; then
  log "1. from scratch: $STEPS steps at batch $BATCH, for $TRAIN_MIN min at most"
  python3 -m ddim_edu.train --dataset mnist --steps "$STEPS" --batch-size "$BATCH" --dropout "$DROPOUT" --ema 0.9995 \
    --seed 1 --lr 1e-3 --lr-warmup 100 --lr-schedule cosine --loss-weighting min_snr --min-snr-gamma 5 \
    --min-snr-floor "$FLOOR" --bf16 --ckpt-every "$CKPT" --snapshot-every "$SNAP" --sample-every 0 --log-every 50 --no-progress \
    --max-minutes "$TRAIN_MIN" --device cpu --out "$RUN" >> "$R/${NAME}_train.log" 2>&1
elif [ ! -f "$INIT/model.safetensors" ]; then
  # runs/ is not in the repository: a fresh clone has neither the run nor the weights it starts from
  log "neither $RUN/state.safetensors (a run to resume) nor $INIT/model.safetensors (weights to start from):"
  log "give INIT=<a checkpoint folder> (e.g. a run of retrain_gpu.sh), or RUN=<a run folder> to resume"; exit 1
else
  log "1. warm start from $INIT: $STEPS steps at batch $BATCH, for $TRAIN_MIN min at most"
  python3 -m ddim_edu.train --init "$INIT" --dataset mnist --steps "$STEPS" --batch-size "$BATCH" --dropout "$DROPOUT" \
    --ema 0.9995 --seed 3 --lr 1e-3 --lr-warmup 100 --lr-schedule cosine --lr-decay-steps "$STEPS" \
    --loss-weighting min_snr --min-snr-gamma 5 --ckpt-every "$CKPT" --snapshot-every "$SNAP" --sample-every 0 \
    --log-every 50 --no-progress --max-minutes "$TRAIN_MIN" --device cpu --out "$RUN" >> "$R/${NAME}_train.log" 2>&1
fi
[ -f "$R/${NAME}_train.log" ] && tail -2 "$R/${NAME}_train.log"
read -r done_steps target <<< "$(step_of "$RUN")"
if [ "$done_steps" -lt "$target" ]; then
  log "stopped at step $done_steps of $target; call again to go on"; exit 0
fi
cp "$RUN/config.json" "$R/config_${NAME}.json"

measure() {  # name, checkpoint; class survival first: it takes minutes, KID about an hour
  if [ ! -f "$R/${NAME}_recon_$1.json" ]; then
    log "class survival of $2's encode -> decode, S = $RECON_STEPS"
    python3 benchmarks/reconstruction.py --checkpoint "$2" --steps "$RECON_STEPS" --n "$RECON_N" --device cpu \
      --out "$R/${NAME}_recon_$1" > "$R/${NAME}_recon_$1.log" 2>&1; tail -6 "$R/${NAME}_recon_$1.log"
  fi
  if [ ! -f "$R/${NAME}_kid_$1.json" ]; then
    log "KID of $2: $N_KID samples a cell, S = $KID_STEPS, η = $ETAS"
    against=(); [ "$2" != checkpoints/mnist ] && against=(--against checkpoints/mnist)  # this run minus shipped, paired
    python3 benchmarks/kid_table.py --checkpoint "$2" --n "$N_KID" --steps "$KID_STEPS" --etas "$ETAS" --threads "$THREADS" \
      --device cpu "${against[@]}" --out "$R/${NAME}_kid_$1" > "$R/${NAME}_kid_$1.log" 2>&1
    tail -8 "$R/${NAME}_kid_$1.log"
  fi
}
log "2. the run's last weights"
measure "$NAME" "$RUN"
if [ ! -f "$R/${NAME}_curve.json" ]; then
  log "3. training curve of $RUN (KID of $N_CURVE DDIM-10 samples, L_simple)"
  before=(); [ "$INIT" = none ] || before=(--before "$INIT")
  python3 benchmarks/training_curve.py --run "$RUN" "${before[@]}" --n "$N_CURVE" --cells 0:10 \
    --loss-repeats 4 --out "$R/${NAME}_curve" 2>&1 | tee "$R/${NAME}_curve.log" | grep "^step\|held"
fi
if [ "${MEASURE_SHIPPED:-0}" = 1 ] || [ ! -f "$R/kid_shipped.json" ] || [ ! -f "$R/recon_shipped.json" ]; then
  log "4. the shipped model"
  measure shipped checkpoints/mnist
else
  log "4. the shipped model: $R/kid_shipped.json and recon_shipped.json (H200, same x_T and noise seed)"
fi
log "done"
