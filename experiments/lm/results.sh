#!/usr/bin/env bash
# The runs behind reports/lm/RESULTS.md, one section at a time.
# Usage: bash experiments/lm/results.sh SECTION [OUT]
#   SECTION: default | study | length | grid | lr | learning | speed   (OUT: default results/lm)
# Every `ordergrad-jax run lm-rl` writes OUT/<section>/lm-rl/<run-id>/; KEEP=reports/lm copies each
# run's small files where the document's tables read them (`ordergrad-jax report lm` rebuilds
# them). DRY_RUN=1 lists the run ids of a section (run folders, or diagnose output files) and runs
# nothing. Wall time of each section on the project's 2-core CPU: default ~25 min, study ~65 min,
# length ~75 min, grid ~11 min, lr ~3 min, learning ~30 min, speed ~5 min.
set -euo pipefail
SECTION=${1:?default|study|length|grid|lr|learning|speed}
OUT=${2:-results/lm}
OGJ=${ORDERGRAD_JAX:-ordergrad-jax}  # the installed command (activate the venv, or set ORDERGRAD_JAX)
PY=${PYTHON:-python}
KEEP=${KEEP:-}
DIR="$OUT/$SECTION"
# Every run committed before 2026-12-02 was made with XLA:CPU's default kernels in the learn
# phase; NOFUSE keeps them reproducible to the bit (the fused learner, now the default
# learn_cpu_fusions, gives the same values to float rounding, which sampling then amplifies).
NOFUSE=(--set learn_cpu_fusions=)
# The old SFT start (1000 steps, no label smoothing): the grid, lr and learning sections.
OLD=(--set sft_steps=1000 --set sft_smoothing=0 --set sft_cache="$OUT/sft-old" "${NOFUSE[@]}")

run() {  # run ID --set ... ; skips a finished run, resumes an unfinished one
  local id=$1; shift
  if [[ -n ${DRY_RUN:-} ]]; then echo "$id"; return; fi
  mkdir -p "$DIR"
  if [[ ! -f "$DIR/lm-rl/$id/summary.md" ]]; then
    echo "run: $id"
    "$OGJ" run lm-rl --out "$DIR" --run-id "$id" "$@" > "$DIR/$id.log" 2>&1 || true
  fi
  [[ -f "$DIR/lm-rl/$id/summary.md" ]] || { echo "FAILED: $id (see $DIR/$id.log)"; return; }
  if [[ -n $KEEP && -n ${COPY:-} ]]; then  # the run's files as they are (the lr tables read them)
    mkdir -p "$KEEP/$SECTION/$id"
    cp "$DIR/lm-rl/$id/"{config.json,metrics.jsonl,summary.md} "$KEEP/$SECTION/$id/"
  elif [[ -n $KEEP ]]; then  # config, summary and the metric rows cut to curve.jsonl
    "$PY" -m experiments.report.lm_default curate "$DIR/lm-rl/$id" "$KEEP/$SECTION/$id" \
      ${EVERY:+--every $EVERY}
  fi
}

diagnose() {  # diagnose FILE MODE ARGS... : appends MODE's JSON lines to FILE (in KEEP if set)
  local file=$1; shift
  if [[ -n ${DRY_RUN:-} ]]; then echo "$file"; return; fi
  local dest=${KEEP:+$KEEP/$SECTION}
  dest=${dest:-$DIR}
  mkdir -p "$dest"
  "$PY" -m experiments.lm.diagnose "$@" --out "$dest/$file"
}

case $SECTION in
default)  # "The default setting": the starts, the controlled trial, 3 seeds x 3 methods, a long run
  # (all with XLA's default kernels), then the same 3 x 3 runs with the fused learner (the default)
  common=(--set sft_cache="$OUT/sft" "${NOFUSE[@]}")
  diagnose starts.jsonl sharpen --set estimator.name=grpo "${OLD[@]}" --scales 2,3,10
  diagnose starts.jsonl sharpen --set estimator.name=grpo "${common[@]}" --scales 2,3,10
  diagnose starts.jsonl sharpen --set estimator.name=grpo --set sft_steps=2000 \
    --set sft_smoothing=0 --set sft_cache="$OUT/sft-clean" "${NOFUSE[@]}" --scales 2,3,10
  diagnose trial-smoothed-start.jsonl trial --set estimator.name=grpo "${common[@]}" \
    --opt adam:lr=1e-4 --steps 300 --eval-every 50
  for lever in "--set num_groups=64 --set group_size=4 --opt adam:lr=2e-5 --opt adam:lr=6e-5" \
    "--set num_groups=32 --set group_size=8 --opt adam:lr=2e-5" \
    "--set ppo_epochs=4 --opt adam:lr=2e-5"; do
    # shellcheck disable=SC2086
    diagnose old-start-levers.jsonl trial --set estimator.name=grpo "${OLD[@]}" $lever \
      --steps 200 --eval-every 50
  done
  # (the committed REINFORCE control at 1e-4 was stopped after its step-50 evaluation)
  diagnose old-start-levers.jsonl trial --set estimator.name=reinforce "${OLD[@]}" \
    --set num_groups=64 --set group_size=4 --opt adam:lr=3e-4 --opt adam:lr=1e-4 \
    --steps 200 --eval-every 50
  for seed in 0 1 2; do
    run "grpo-s$seed" --seed $seed "${common[@]}" --set estimator.name=grpo
    run "top2at4-s$seed" --seed $seed "${common[@]}"
    run "rloo-s$seed" --seed $seed "${common[@]}" --set estimator.name=rloo
  done
  EVERY=10 run long-grpo-1500 --seed 0 "${common[@]}" --set estimator.name=grpo \
    --set steps=1500 --set num_chunks=15
  for seed in 0 1 2; do
    run "grpo-fused-s$seed" --seed $seed --set sft_cache="$OUT/sft" --set estimator.name=grpo
    run "top2at4-fused-s$seed" --seed $seed --set sft_cache="$OUT/sft"
    run "rloo-fused-s$seed" --seed $seed --set sft_cache="$OUT/sft" --set estimator.name=rloo
  done
  ;;
study)  # "The pass@k study": experiments/lm/study.sh (11 methods x 5 seeds, two runs at a time)
  if [[ -n ${DRY_RUN:-} ]]; then DRY_RUN=1 bash experiments/lm/study.sh; exit 0; fi
  OUT="$DIR" KEEP=${KEEP:+$KEEP/study} bash experiments/lm/study.sh
  ;;
length)  # "Length": experiments/lm/length.sh (GRPO vs TopM:2@4 with/without a length penalty)
  if [[ -n ${DRY_RUN:-} ]]; then DRY_RUN=1 bash experiments/lm/length.sh; exit 0; fi
  OUT="$DIR" KEEP=${KEEP:+$KEEP/length} bash experiments/lm/length.sh
  ;;
grid)  # "The 50-step grid": experiments/lm/grid.sh (6 methods x 3 seeds from the old start)
  if [[ -n ${DRY_RUN:-} ]]; then DRY_RUN=1 bash experiments/lm/grid.sh; exit 0; fi
  OUT="$DIR" KEEP=${KEEP:+$KEEP/grid} bash experiments/lm/grid.sh
  ;;
lr)  # "Learning rate (before the grid)": GRPO and RLOO at Adam 1e-3 and 3e-4 from the old start
  COPY=1
  for est in grpo rloo; do
    run "$est-lr1e-3" --seed 0 "${OLD[@]}" --set estimator.name=$est --set lr=1e-3 \
      --set steps=80 --set num_chunks=8
    run "$est-lr3e-4" --seed 0 "${OLD[@]}" --set estimator.name=$est --set lr=3e-4 \
      --set steps=60 --set num_chunks=6
  done
  ;;
learning)  # "Why RL did not learn from the old start": the diagnose measurements and three runs
  g=(--set estimator.name=grpo "${OLD[@]}")
  diagnose grads.jsonl grads "${g[@]}" --batches 16
  diagnose line.jsonl line "${g[@]}" --batches 16 --distances 0.015,0.05,0.15
  diagnose sharpen.jsonl sharpen "${OLD[@]}" --scales 1.25,1.5,2,3
  diagnose trials-300steps.jsonl trial "${g[@]}" --opt adam:lr=1e-4 --opt adam:lr=2e-5 \
    --opt ngd:lr=0.003 --steps 300 --eval-every 50
  diagnose trial-64x16.jsonl trial "${g[@]}" --set num_groups=64 --opt adam:lr=1e-4 \
    --steps 150 --eval-every 50
  diagnose trials-60steps.jsonl trial "${g[@]}" --opt adam:lr=1e-4,embed=0 --opt sgd:lr=0.01 \
    --opt ngd:lr=0.003 --opt adam:lr=2e-5 --steps 60 --eval-every 30
  run grpo-lr2e-5-1200 --seed 0 "${g[@]}" --set lr=2e-5 --set steps=1200 --set num_chunks=12
  run top2at4-lr2e-5-600 --seed 0 "${OLD[@]}" --set lr=2e-5 --set steps=600 --set num_chunks=6
  run rloo-lr2e-5-600 --seed 0 "${OLD[@]}" --set estimator.name=rloo --set lr=2e-5 \
    --set steps=600 --set num_chunks=6
  ;;
speed)  # "Speed": the step-time split on 1 device and on 8 simulated devices (4 x 2 mesh) at the
  # default size; at the pass@k study's size (3-digit addition) three repeats on 1 device, then 2
  # devices (one per core, data parallel) and 8 (4 x 2); each also splits the learn phase's
  # operation time (--profile); then 3 repeats on 1 device without the learn phase's YNNPACK
  # fusions (learn_cpu_fusions, on by default on CPU): XLA:CPU's default kernels
  if [[ -n ${DRY_RUN:-} ]]; then
    printf '%s\n' 1dev-1x1 8dev-4x2 study-1dev-r1 study-1dev-r2 study-1dev-r3 study-2dev-2x1 \
      study-8dev-4x2 study-1dev-nofusion-r1 study-1dev-nofusion-r2 study-1dev-nofusion-r3
    exit 0
  fi
  dest=${KEEP:+$KEEP/speed}
  dest=${dest:-$DIR}
  speed() {  # speed DEVICES MESH RUN-ID [--set ...]
    local n=$1 mesh=$2 id=$3; shift 3
    XLA_FLAGS="--xla_force_host_platform_device_count=$n" \
      "$PY" -m experiments.lm.speed --mesh "$mesh" --out "$dest" --run-id "$id" --profile "$@"
  }
  speed 1 1,1 1dev-1x1
  speed 8 4,2 8dev-4x2
  for r in 1 2 3; do speed 1 1,1 "study-1dev-r$r" --set digits=3; done
  speed 2 2,1 study-2dev-2x1 --set digits=3
  speed 8 4,2 study-8dev-4x2 --set digits=3
  for r in 1 2 3; do
    speed 1 1,1 "study-1dev-nofusion-r$r" --set digits=3 --set learn_cpu_fusions=
  done
  ;;
*)
  echo "unknown section $SECTION: default|study|length|grid|lr|learning|speed" >&2
  exit 2
  ;;
esac
