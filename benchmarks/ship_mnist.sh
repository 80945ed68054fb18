#!/usr/bin/env bash
# Ship a retrained MNIST model: its weights become checkpoints/mnist, and what results/ records
# for the shipped model is measured again for it on this machine (a 2-core CPU: about 8 hours in
# all, most of it Tables 1 and 2). Every call continues where the last one stopped: a result
# already written is not measured again (Table 1 keeps each η, Table 2 each S), so it can be
# killed at any time and called again, over several sessions.
#   RUN=/root/retrain/minsnr_cos NAME=scratch bash benchmarks/ship_mnist.sh
#   0. the run must have all its steps and retrain_cpu.sh must have measured it beside the
#      shipped model (results/retrain_mnist/${NAME}_*): after step 1 the shipped model is the run;
#   1. the results that describe the shipped model now are copied to results/$PREV/ (once; PREV
#      defaults to previous_mnist, so a later model shipping over this one needs a new PREV, e.g.
#      PREV=scratch_mnist), Table 1's parts moved there, then the run's model.safetensors and
#      config.json become checkpoints/mnist;
#   2. Table 1 (quality.py): N_T1 samples a cell, η ∈ {0, 0.2, 0.5, 1, σ̂}, S ∈ T1_STEPS (S = 1000
#      adds 5 × 2,000 × 1,000 network calls, about 14 hours here, so the CPU default stops at 100),
#      one part per η in results/table1_parts/ (about 30 minutes each), merged into results/table1_mnist.* and config.json;
#   3. Table 2 (reconstruction.py --resume): the 500 held-out digits, S ∈ T2_FIRST, and after
#      step 5 the rest of T2_STEPS;
#   4. KID: results/kid_paired_mnist (2,000 a cell, S = 10, 20; adopted from retrain_cpu.sh's
#      measurement of the run when there is one) and kid_mnist (500, S = 10);
#   5. memorisation.py, scripts/bits_per_dim.py --n 100 --timesteps 50, the speed-run's row
#      for the shipped model (speedrun.py --shipped --n 500), Table 1's DDIM cells and Table 2 on the
#      quadratic grid (S = 10, 20; S = 10 … 100) and the solvers' MNIST FID (solvers.py, 1,000 samples a cell);
#   6. the run's training curve (retrain_cpu.sh's ${NAME}_curve.*) as results/training_curve_mnist.*.
# Each measuring process gets THREADS threads; Tables 1 and 2 keep the network's weights channels-last
# (1.3-1.5x faster on this CPU, the same numbers up to float32 rounding). What it does not do: edit README, notebooks or
# checkpoints/README.md, whose text describes the model (results/README.md lists what to update).
# A dry run (plumbing only; nothing it prints means anything, and it leaves the tree as it was):
#   DRY=1 bash benchmarks/ship_mnist.sh      # DRY_DIR=<a folder>: kept, and a second call continues there
set -u
cd "$(dirname "$0")/.."
RUN=${RUN:-/root/retrain/minsnr_cos}; NAME=${NAME:-scratch}; THREADS=${THREADS:-2}; PREV=${PREV:-previous_mnist}
N_T1=${N_T1:-2000}; T1_STEPS=${T1_STEPS:-10,20,50,100}; T2_STEPS=${T2_STEPS:-10,20,50,100,200,500,1000}
T2_FIRST=${T2_FIRST:-10,20,50,100,200}
R=results; CK=checkpoints/mnist; N_KID=2000; N_KID1=500; N_MEM=2000; N_SHIP=500; N_T2=500; N_SOLV=1000
Q_STEPS=10,20; Q2_STEPS=10,20,50,100; SOLV_OPTS=()
if [ "${DRY:-0}" = 1 ]; then     # a copy of the tree in /tmp, a three-step model, a few samples
  dry=${DRY_DIR:-$(mktemp -d)}
  mkdir -p "$dry"; [ -d "$dry/run" ] || { cp -r benchmarks ddim_edu scripts checkpoints results "$dry"/
  python3 -m ddim_edu.train --dataset mnist --steps 3 --batch-size 4 --widths 8,16,16 --num-res-blocks 1 \
    --groups 4 --sample-every 0 --no-progress --device cpu --out "$dry/run" > /dev/null 2>&1
  rm -rf "$dry/results/table1_parts"     # parts of the real table are not parts of this one
  mkdir -p "$dry/results/retrain_mnist"; touch "$dry/results/retrain_mnist/dry_curve.json"; }
  cd "$dry"; RUN=$dry/run; NAME=dry; N_T1=8; T1_STEPS=2; T2_STEPS=2,3; T2_FIRST=2; N_KID=8; N_KID1=8; N_MEM=8; N_SHIP=8; N_T2=8
  N_SOLV=8; Q_STEPS=2; Q2_STEPS=2; SOLV_OPTS=(--quick)
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 DDIM_EDU_OFFLINE=1 MPLBACKEND=Agg OMP_NUM_THREADS=$THREADS
log() { echo "== [$(date -u +%H:%M:%S)] $*"; }
# the weights' identity: sha256 of a safetensors file's tensor bytes (its metadata, which holds
# config.json's checksum, changes when a benchmark records results in config.json)
weights_id() { python3 -c "import hashlib, struct, sys; b = open(sys.argv[1], 'rb').read(); \
  n = struct.unpack('<Q', b[:8])[0]; print(hashlib.sha256(b[8 + n:]).hexdigest()[:16])" "$1"; }
done_steps=$(python3 -c "import json, sys; c = json.load(open(sys.argv[1])); print(int(c['step'] >= c['training']['steps']))" \
  "$RUN/config.json" 2>/dev/null || echo 0)
if [ "$done_steps" != 1 ]; then log "$RUN has not all its steps: run retrain_cpu.sh first"; exit 1; fi
if [ ! -f "$R/retrain_mnist/${NAME}_curve.json" ]; then
  log "$R/retrain_mnist/${NAME}_curve.json is missing: retrain_cpu.sh measures the run beside the shipped model first"
  exit 1
fi

# 1. the run becomes the shipped model (once); the old results stay readable beside it
sha=$(weights_id "$RUN/model.safetensors")
if [ "$(weights_id "$CK/model.safetensors")" != "$sha" ]; then
  if [ ! -f "$R/$PREV/config.json" ]; then      # once: never over what it kept before
    log "1. the results of the model shipped until now -> $R/$PREV/"
    mkdir -p "$R/$PREV"
    for f in table1_mnist table2_mnist kid_mnist kid_paired_mnist memorisation_mnist likelihood_mnist \
             training_curve_mnist table1_mnist_quadratic table2_mnist_quadratic solvers speedrun/shipped_n$N_SHIP; do
      cp "$R/$f".* "$R/$PREV/" 2>/dev/null
    done
    # Table 1's parts are that model's: kept with it, so that step 2 measures every η again
    [ -d "$R/table1_parts" ] && mv "$R/table1_parts" "$R/$PREV/table1_parts"
    cp "$CK/config.json" "$R/$PREV/config.json"
  fi
  log "1. $RUN -> $CK (its commands name the run folder runs/mnist)"
  cp "$RUN/model.safetensors" "$RUN/config.json" "$CK/"
  python3 - "$CK" "$RUN" <<'EOF'
import json, sys
from ddim_edu.train import checkpoints as ck
folder, run = sys.argv[1:]
config, weights, _ = ck.read_model_dir(folder)
ck.save_model_dir(folder, weights, json.loads(json.dumps(config).replace(run.rstrip("/"), "runs/mnist")))
EOF
fi

# 2. Table 1, one part per η (each about 30 minutes at S ≤ 100 on two threads)
parts=(); mkdir -p "$R/table1_parts"
for eta in 0 0.2 0.5 1 hat; do
  part="$R/table1_parts/eta_${eta//./p}"; parts+=("$part.json")     # no dot: write_results takes it for a suffix
  if [ ! -f "$part.json" ]; then
    log "2. Table 1, η = $eta: $N_T1 samples a cell, S = $T1_STEPS"
    python3 benchmarks/quality.py --n "$N_T1" --etas "$eta" --steps "$T1_STEPS" --device cpu --channels-last --out "$part" \
      > "$part.log" 2>&1 || { log "failed: $part.log"; tail -3 "$part.log"; exit 1; }
  fi
done
if [ ! -f "$R/table1_mnist.json" ] || [ "$(python3 -c "import json; print(json.load(open('$R/table1_mnist.json'))['checkpoint_step'])")" != \
     "$(python3 -c "import json; print(json.load(open('${parts[0]}'))['checkpoint_step'])")" ]; then
  log "2. Table 1: merging the parts"
  python3 benchmarks/quality.py --merge "${parts[@]}" --out "$R/table1_mnist" --record-config | tail -2
fi

# 3. Table 2, S by S (the table of the model shipped until now is replaced, this model's continued):
# S ≤ 200 first (about 40 minutes), S = 500 and 1000 (about 2.5 hours) after the shorter results
table2() {  # the S to have measured, comma-separated
  local step resume=()
  step=$(python3 -c "import json; print(json.load(open('$CK/config.json'))['step'])")
  t2_of() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(d['checkpoint_step'], d['n'])" "$1" \
    2>/dev/null; }
  # retrain_cpu.sh measured S = 10, 20, 50 of the run on the same digits: those cells are kept
  if [ "$(t2_of "$R/table2_mnist.json")" != "$step $N_T2" ] && \
     [ "$(t2_of "$R/retrain_mnist/${NAME}_recon_${NAME}.json")" = "$step $N_T2" ]; then
    log "3. Table 2: the cells of $R/retrain_mnist/${NAME}_recon_${NAME}.json are kept"
    cp "$R/retrain_mnist/${NAME}_recon_${NAME}.json" "$R/table2_mnist.json"
  fi
  [ "$(t2_of "$R/table2_mnist.json")" = "$step $N_T2" ] && resume=(--resume)
  log "3. Table 2: $N_T2 held-out digits, S = $1 ${resume[*]}"
  python3 benchmarks/reconstruction.py --n "$N_T2" --steps "$1" --device cpu --channels-last "${resume[@]}" \
    --out "$R/table2_mnist" | grep "^S=" || { log "Table 2 failed"; exit 1; }
}
table2 "$T2_FIRST"

# 4.-5. each result once for these weights: results/$PREV/remeasured.txt lists what was
# measured again for them (a result file alone cannot say: some record no model step)
ledger=$R/$PREV/remeasured.txt
[ -f "$ledger" ] || echo "# results measured again for checkpoints/mnist: name, sha256 of its weights (16 hex of its tensor bytes)" > "$ledger"
measure() {  # result json, command...
  local out=$1 name; name=$(basename "$1" .json); shift
  if grep -q "^$name $sha\$" "$ledger"; then return; fi
  log "$name: $*"
  "$@" > "${out%.json}.log" 2>&1 || { log "failed: ${out%.json}.log"; tail -3 "${out%.json}.log"; exit 1; }
  tr '\r' '\n' < "${out%.json}.log" | tail -2; echo "$name $sha" >> "$ledger"
}
# retrain_cpu.sh measured the paired KID of these weights already (2,000 a cell, S = 10, 20, 50, η = 0
# and 1, seed 0, and each cell against the model shipped before): the same samples, so it is adopted
adopt() {  # from, to (paths without extension): the files, with the run's folder named runs/mnist
  local ext
  for ext in json md png; do
    [ -f "$1.$ext" ] || continue
    if [ "$ext" = png ]; then cp "$1.$ext" "$2.$ext"; else sed "s#${RUN%/}#runs/mnist#g" "$1.$ext" > "$2.$ext"; fi
  done
}
if [ -f "$R/retrain_mnist/${NAME}_kid_${NAME}.json" ] && ! grep -q "^kid_paired_mnist $sha\$" "$ledger"; then
  log "kid_paired_mnist: adopted from $R/retrain_mnist/${NAME}_kid_${NAME}.*"
  adopt "$R/retrain_mnist/${NAME}_kid_${NAME}" "$R/kid_paired_mnist"; echo "kid_paired_mnist $sha" >> "$ledger"
fi
measure "$R/kid_paired_mnist.json" python3 benchmarks/kid_table.py --n "$N_KID" --steps 10,20 --threads "$THREADS" \
  --device cpu --out "$R/kid_paired_mnist"
measure "$R/kid_mnist.json" python3 benchmarks/kid_table.py --n "$N_KID1" --steps 10 --threads "$THREADS" --device cpu \
  --out "$R/kid_mnist"
measure "$R/memorisation_mnist.json" python3 benchmarks/memorisation.py --n "$N_MEM" --threads "$THREADS" --device cpu \
  --out "$R/memorisation_mnist"
measure "$R/likelihood_mnist.json" python3 scripts/bits_per_dim.py --n 100 --timesteps 50 --out "$R/likelihood_mnist"
measure "$R/speedrun/shipped_n$N_SHIP.json" python3 benchmarks/speedrun.py --shipped --n "$N_SHIP" --threads "$THREADS" \
  --out-dir "$R/speedrun"
python3 benchmarks/speedrun.py --table --out-dir "$R/speedrun" > /dev/null   # speedrun_cpu.md: its shipped row
measure "$R/table1_mnist_quadratic.json" python3 benchmarks/quality.py --n "$N_T1" --etas 0 --steps "$Q_STEPS" \
  --skip quadratic --device cpu --channels-last --out "$R/table1_mnist_quadratic"
measure "$R/table2_mnist_quadratic.json" python3 benchmarks/reconstruction.py --n "$N_T2" --steps "$Q2_STEPS" \
  --skip quadratic --device cpu --channels-last --out "$R/table2_mnist_quadratic"
measure "$R/solvers.json" python3 benchmarks/solvers.py --n "$N_SOLV" "${SOLV_OPTS[@]}" --device cpu --out "$R/solvers"

table2 "$T2_STEPS"

# 6. the run's training curve is the shipped model's
if [ "$(sed "s#${RUN%/}#runs/mnist#g" "$R/retrain_mnist/${NAME}_curve.json")" != "$(cat "$R/training_curve_mnist.json")" ]; then
  log "6. $R/retrain_mnist/${NAME}_curve.* -> $R/training_curve_mnist.*"
  adopt "$R/retrain_mnist/${NAME}_curve" "$R/training_curve_mnist"
fi
log "done"
[ "${DRY:-0}" = 1 ] && [ -z "${DRY_DIR:-}" ] && rm -rf "$dry"
exit 0
