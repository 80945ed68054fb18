#!/usr/bin/env bash
# Ship a retrained MNIST model. Everything results/ records for the shipped model is first measured
# for the run, into results/next_mnist/ (a 2-core CPU: about 9 hours in all, most of it Tables 1 and
# 2); only when all of it is there do the run's weights become checkpoints/mnist and those results
# replace the shipped model's. Until then checkpoints/mnist and every result about it stay as they
# were, so the measuring can be committed part by part over several sessions. Every call continues
# where the last one stopped: a result already written is not measured again (Table 1 keeps each η,
# Table 2 each S), so it can be killed at any time and called again.
#   PREV=scratch_mnist RUN=results/retrain_mnist/drop2c_weights \
#     CURVES="results/retrain_mnist/drop2_curve.json results/retrain_mnist/drop2c_curve.json" bash benchmarks/ship_mnist.sh
#   the H200 fine-tune with a min-SNR floor of 0.2 (stopped by its time budget; Table 2 measured there, its
#   cells kept), its curve measured on the CPU like drop2's and drop2c's:
#   STOPPED_OK=1 PREV=drop2c_mnist RUN=results/retrain_mnist/gpu_floor_weights CURVES="results/retrain_mnist/drop2_curve.json \
#     results/retrain_mnist/drop2c_curve.json results/retrain_mnist/gpu_floor_cpucurve.json" bash benchmarks/ship_mnist.sh
#   0. the run must have all its steps (STOPPED_OK=1: or stopped by its time budget), and its training curve must be measured: retrain_cpu.sh's
#      results/retrain_mnist/${NAME}_curve.json, or CURVES, the curves of one training continued
#      over several runs (each warm-started from the last weights of the one before), oldest first;
#   1. Table 1 (quality.py): N_T1 samples a cell, η ∈ {0, 0.2, 0.5, 1, σ̂}, S ∈ T1_STEPS (S = 1000
#      adds 5 × 2,000 × 1,000 network calls, about 14 hours here, so the CPU default stops at 100),
#      one part per η in results/next_mnist/table1_parts/ (about 30 minutes each), then merged
#      (and recorded in the run's config.json);
#   2. Table 2 (reconstruction.py --resume): the 500 held-out digits, S ∈ T2_FIRST (the cells of
#      retrain_cpu.sh's ${NAME}_recon_${NAME}.json are kept when it measured these weights), and
#      after step 4 the rest of T2_STEPS;
#   3. KID: kid_paired_mnist (2,000 a cell, η ∈ {0, 1}, S = 10, 20, 50, and each cell against
#      checkpoints/mnist, the model shipped until now, on the same x_T) and kid_mnist (500, S = 10);
#   4. memorisation.py, loss_gap.py (notebook 02's paired loss gap at ten seeds), scripts/bits_per_dim.py --n 100 --timesteps 50, the speed-run's row for the
#      shipped model (speedrun.py --shipped --n 500), Table 1's DDIM cells and Table 2 on the
#      quadratic grid (S = 10, 20; S = 10 … 100), the solvers' MNIST FID (solvers.py, 1,000 samples a cell),
#      and the ε-error near t = 0 beside checkpoints/mnist's with Heun into and short of t = 0 (solvers_small_t.py);
#   5. the training curve (training_curve.py --join: the curves as one, nothing sampled again);
#   6. the swap, once all of the above is there: the results that describe the shipped model until
#      now are copied to results/$PREV/ (PREV defaults to previous_mnist; a later model shipping over
#      this one needs a new PREV) with Table 1's parts, the run's model.safetensors and config.json
#      become checkpoints/mnist, and results/next_mnist/ moves into results/, naming the model
#      checkpoints/mnist (and in kid_paired_mnist and solvers_small_t the model it was compared with "the model
#      shipped before it") and
#      results/ (not results/next_mnist/).
# Each measuring process gets THREADS threads; Tables 1 and 2 keep the network's weights channels-last
# (1.3-1.5x faster on this CPU, the same numbers up to float32 rounding). What it does not do: edit README, notebooks or
# checkpoints/README.md, whose text describes the model (results/README.md lists what to update).
# A dry run (plumbing only; nothing it prints means anything, and it leaves the tree as it was):
#   DRY=1 bash benchmarks/ship_mnist.sh      # DRY_DIR=<a folder>: kept, and a second call continues there
set -u
cd "$(dirname "$0")/.."
RUN=${RUN:-results/retrain_mnist/drop2c_weights}; NAME=${NAME:-$(basename "$RUN" _weights)}; THREADS=${THREADS:-2}
PREV=${PREV:-previous_mnist}; CURVES=${CURVES:-results/retrain_mnist/${NAME}_curve.json}
N_T1=${N_T1:-2000}; T1_STEPS=${T1_STEPS:-10,20,50,100}; T2_STEPS=${T2_STEPS:-10,20,50,100,200,500,1000}
T2_FIRST=${T2_FIRST:-10,20,50,100,200}
R=results; S=results/next_mnist; CK=checkpoints/mnist; N_KID=2000; N_KID1=500; N_MEM=2000; N_SHIP=500; N_T2=500
N_SOLV=1000; N_SST=500; KID_STEPS=10,20,50; Q_STEPS=10,20; Q2_STEPS=10,20,50,100; SOLV_OPTS=(); LG_OPTS=()
if [ "${DRY:-0}" = 1 ]; then     # a copy of the tree in /tmp, a three-step model, a few samples
  dry=${DRY_DIR:-$(mktemp -d)}
  mkdir -p "$dry"; [ -d "$dry/runs/dryrun" ] || { cp -r benchmarks ddim_edu scripts checkpoints results "$dry"/
  python3 -m ddim_edu.train --dataset mnist --steps 3 --batch-size 4 --widths 8,16,16 --num-res-blocks 1 \
    --groups 4 --sample-every 0 --no-progress --device cpu --out "$dry/runs/dryrun" > /dev/null 2>&1
  rm -rf "$dry/results/next_mnist"     # what the real call measured is not this model's
  DDIM_EDU_OFFLINE=1 MPLBACKEND=Agg python3 "$dry/benchmarks/training_curve.py" --run "$dry/runs/dryrun" --n 4 --cells 0:2 \
    --loss-repeats 1 --device cpu --out "$dry/results/retrain_mnist/dry_curve" > /dev/null; }
  cd "$dry"; RUN=$dry/runs/dryrun; NAME=dry; CURVES=$R/retrain_mnist/dry_curve.json; N_T1=8; T1_STEPS=2; T2_STEPS=2,3; T2_FIRST=2
  N_KID=8; N_KID1=8; N_MEM=8; N_SHIP=8; N_T2=8; N_SOLV=8; N_SST=8; KID_STEPS=2; Q_STEPS=2; Q2_STEPS=2; SOLV_OPTS=(--quick)
  LG_OPTS=(--seeds 1 --sizes fast)
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DDIM_EDU_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=$THREADS
log() { echo "== [$(date -u +%H:%M:%S)] $*"; }
# the weights' identity: sha256 of a safetensors file's tensor bytes (its metadata, which holds
# config.json's checksum, changes when a benchmark records results in config.json)
weights_id() { python3 -c "import hashlib, struct, sys; b = open(sys.argv[1], 'rb').read(); \
  n = struct.unpack('<Q', b[:8])[0]; print(hashlib.sha256(b[8 + n:]).hexdigest()[:16])" "$1"; }
# a run that stopped at its --max-minutes (a GPU run's time budget) counts as whole only with STOPPED_OK=1
done_steps=$(python3 -c "import json, sys; c = json.load(open(sys.argv[1])); \
  print(int(c['step'] >= c['training']['steps'] or (sys.argv[2] == '1' and 'time budget' in (c.get('stopped_early') or ''))))" \
  "$RUN/config.json" "${STOPPED_OK:-0}" 2>/dev/null || echo 0)
if [ "$done_steps" != 1 ]; then log "$RUN has not all its steps: run retrain_cpu.sh first"; exit 1; fi
for c in $CURVES; do
  [ -f "$c" ] || { log "$c is missing: retrain_cpu.sh measures the run's training curve first"; exit 1; }
done
sha=$(weights_id "$RUN/model.safetensors"); shipped_sha=$(weights_id "$CK/model.safetensors")
# results/$PREV/ is where the swap keeps the results of the model shipped until now: never another model's
if [ -f "$R/$PREV/config.json" ] && [ "$shipped_sha" != "$sha" ] && ! cmp -s "$R/$PREV/config.json" "$CK/config.json"; then
  log "$R/$PREV/ holds the results of another model than $CK: give PREV a name of its own"; exit 1
fi
if [ "$shipped_sha" = "$sha" ] && [ ! -d "$S" ]; then log "$RUN is shipped already"; exit 0; fi
mkdir -p "$S"
ledger=$S/measured.txt    # what is measured for these weights: name, sha256 of the weights (16 hex of its tensor bytes)
[ -f "$ledger" ] || echo "# measured for $RUN, about to ship: name, weights $sha" > "$ledger"
if ! head -1 "$ledger" | grep -q "weights $sha\$"; then
  log "$S holds the measurements of other weights ($(head -1 "$ledger")): ship or remove them first"; exit 1
fi
step=$(python3 -c "import json, sys; c = json.load(open(sys.argv[1])); print(c.get('steps_total', c['step']))" "$RUN/config.json")

# 1. Table 1, one part per η (each about 30 minutes at S ≤ 100 on two threads)
parts=(); mkdir -p "$S/table1_parts"
for eta in 0 0.2 0.5 1 hat; do
  part="$S/table1_parts/eta_${eta//./p}"; parts+=("$part.json")     # no dot: write_results takes it for a suffix
  if [ ! -f "$part.json" ]; then
    log "1. Table 1, η = $eta: $N_T1 samples a cell, S = $T1_STEPS"
    python3 benchmarks/quality.py --checkpoint "$RUN" --n "$N_T1" --etas "$eta" --steps "$T1_STEPS" --device cpu \
      --channels-last --out "$part" > "$part.log" 2>&1 || { log "failed: $part.log"; tail -3 "$part.log"; exit 1; }
  fi
done
if [ ! -f "$S/table1_mnist.json" ]; then
  log "1. Table 1: merging the parts"
  python3 benchmarks/quality.py --merge "${parts[@]}" --out "$S/table1_mnist" --record-config | tail -2
fi

# 2. Table 2, S by S: S ≤ 200 first (about 40 minutes), S = 500 and 1000 (about 2.5 hours) after the shorter results
table2() {  # the S to have measured, comma-separated
  local resume=()
  t2_of() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(d['checkpoint_step'], d['n'])" "$1" \
    2>/dev/null; }
  # retrain_cpu.sh (${NAME}_recon_${NAME}) or run_gpu.sh (${NAME}_recon) measured some S of the run on the same
  # digits: those cells are kept
  local f
  for f in "$R/retrain_mnist/${NAME}_recon_${NAME}.json" "$R/retrain_mnist/${NAME}_recon.json"; do
    if [ ! -f "$S/table2_mnist.json" ] && [ "$(t2_of "$f")" = "$step $N_T2" ]; then
      log "2. Table 2: the cells of $f are kept"; cp "$f" "$S/table2_mnist.json"
    fi
  done
  [ "$(t2_of "$S/table2_mnist.json")" = "$step $N_T2" ] && resume=(--resume)
  log "2. Table 2: $N_T2 held-out digits, S = $1 ${resume[*]}"
  python3 benchmarks/reconstruction.py --checkpoint "$RUN" --n "$N_T2" --steps "$1" --device cpu --channels-last \
    "${resume[@]}" --out "$S/table2_mnist" | grep "^S=" || { log "Table 2 failed"; exit 1; }
}
table2 "$T2_FIRST"

# 3.-4. each result once for these weights (the ledger lists what is measured: some results record no model step)
measure() {  # result json, command...
  local out=$1 name; name=$(basename "$1" .json); shift
  if grep -q "^$name $sha\$" "$ledger"; then return; fi
  log "$name: $*"
  "$@" > "${out%.json}.log" 2>&1 || { log "failed: ${out%.json}.log"; tail -3 "${out%.json}.log"; exit 1; }
  tr '\r' '\n' < "${out%.json}.log" | tail -2; echo "$name $sha" >> "$ledger"
}
mkdir -p "$S/speedrun"
measure "$S/kid_paired_mnist.json" python3 benchmarks/kid_table.py --checkpoint "$RUN" --n "$N_KID" --steps "$KID_STEPS" \
  --against "$CK" --threads "$THREADS" --device cpu --out "$S/kid_paired_mnist"
measure "$S/kid_mnist.json" python3 benchmarks/kid_table.py --checkpoint "$RUN" --n "$N_KID1" --steps 10 \
  --threads "$THREADS" --device cpu --out "$S/kid_mnist"
measure "$S/memorisation_mnist.json" python3 benchmarks/memorisation.py --checkpoint "$RUN" --n "$N_MEM" \
  --threads "$THREADS" --device cpu --out "$S/memorisation_mnist"
measure "$S/loss_gap_mnist.json" python3 benchmarks/loss_gap.py --checkpoint "$RUN" "${LG_OPTS[@]}" \
  --threads "$THREADS" --out "$S/loss_gap_mnist"
measure "$S/likelihood_mnist.json" python3 scripts/bits_per_dim.py --checkpoint "$RUN" --n 100 --timesteps 50 \
  --out "$S/likelihood_mnist"
measure "$S/speedrun/shipped_n$N_SHIP.json" python3 benchmarks/speedrun.py --shipped --checkpoint "$RUN" --n "$N_SHIP" \
  --threads "$THREADS" --out-dir "$S/speedrun"
measure "$S/table1_mnist_quadratic.json" python3 benchmarks/quality.py --checkpoint "$RUN" --n "$N_T1" --etas 0 \
  --steps "$Q_STEPS" --skip quadratic --device cpu --channels-last --out "$S/table1_mnist_quadratic"
measure "$S/table2_mnist_quadratic.json" python3 benchmarks/reconstruction.py --checkpoint "$RUN" --n "$N_T2" \
  --steps "$Q2_STEPS" --skip quadratic --device cpu --channels-last --out "$S/table2_mnist_quadratic"
measure "$S/solvers.json" python3 benchmarks/solvers.py --checkpoint "$RUN" --n "$N_SOLV" "${SOLV_OPTS[@]}" --device cpu \
  --out "$S/solvers"
measure "$S/solvers_small_t.json" python3 benchmarks/solvers_small_t.py --checkpoint "$RUN" --n "$N_SST" --compare "$CK" \
  --threads "$THREADS" --out "$S/solvers_small_t"

table2 "$T2_STEPS"

# 5. the training curve: the curves as one (nothing sampled again)
# shellcheck disable=SC2086
python3 benchmarks/training_curve.py --join $CURVES --run runs/mnist --out "$S/training_curve_mnist" > /dev/null \
  || { log "joining $CURVES failed"; exit 1; }

# 6. the swap: the run becomes the shipped model, its results the shipped model's
if [ ! -f "$R/$PREV/config.json" ]; then      # once: never over what it kept before
  log "6. the results of the model shipped until now -> $R/$PREV/"
  mkdir -p "$R/$PREV"
  for f in table1_mnist table2_mnist kid_mnist kid_paired_mnist memorisation_mnist loss_gap_mnist likelihood_mnist \
           training_curve_mnist table1_mnist_quadratic table2_mnist_quadratic solvers solvers_small_t speedrun/shipped_n$N_SHIP; do
    cp "$R/$f".* "$R/$PREV/" 2>/dev/null
  done
  [ -d "$R/table1_parts" ] && mv "$R/table1_parts" "$R/$PREV/table1_parts"
  cp "$CK/config.json" "$R/$PREV/config.json"
fi
log "6. $RUN -> $CK (its commands name the run folder runs/mnist), $S -> $R"
cp "$RUN/model.safetensors" "$RUN/config.json" "$CK/"
python3 - "$CK" "$RUN" <<'EOF'
import json, sys
from ddim_edu.train import checkpoints as ck
folder, run = sys.argv[1:]
config, weights, _ = ck.read_model_dir(folder)
ck.save_model_dir(folder, weights, json.loads(json.dumps(config).replace(run.rstrip("/"), "runs/mnist")))
EOF
run_shown=$(python3 -c "import sys; sys.path.insert(0, 'benchmarks'); from common import shown; print(shown(sys.argv[1]))" "$RUN")
for f in "$S"/*.json "$S"/*.md "$S"/*.png "$S/speedrun/shipped_n$N_SHIP.json"; do
  [ -f "$f" ] || continue
  to=$R/${f#"$S"/}
  case $f in
    *.png) cp "$f" "$to" ;;
    */kid_paired_mnist.*|*/solvers_small_t.*) sed -e 's#`checkpoints/mnist`#the model shipped before it#g' -e 's#"checkpoints/mnist"#"the model shipped before it"#g' \
                            -e "s#${run_shown%/}#checkpoints/mnist#g" -e "s#${RUN%/}#checkpoints/mnist#g" -e "s#$S/#$R/#g" "$f" > "$to" ;;
    *) sed -e "s#${run_shown%/}#checkpoints/mnist#g" -e "s#${RUN%/}#checkpoints/mnist#g" -e "s#$S/#$R/#g" "$f" > "$to" ;;
  esac
done
rm -rf "$R/table1_parts"; mv "$S/table1_parts" "$R/table1_parts"
python3 benchmarks/speedrun.py --table --out-dir "$R/speedrun" > /dev/null   # speedrun_cpu.md: its shipped row
rm -rf "$S"
log "done: $RUN is checkpoints/mnist; README, notebooks and checkpoints/README.md still describe the model shipped before (results/README.md lists what to update)"
[ "${DRY:-0}" = 1 ] && [ -z "${DRY_DIR:-}" ] && rm -rf "$dry"
exit 0
