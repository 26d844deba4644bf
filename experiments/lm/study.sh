#!/usr/bin/env bash
# The pass@k study of reports/lm/RESULTS.md (issue 14, section 4): 3-digit addition from one cached
# SFT start (2000 steps, label smoothing 0.3: held-out pass@1 0.17, pass@32 0.94), 11 methods x
# SEEDS seeds x 300 RL steps of 16 prompts x 16 samples, evaluated on 1024 held-out prompts x 32
# samples (unbiased pass@k, k = 1..32) with the same keys for every method of a seed.
# Two runs at a time; finished runs are skipped, an unfinished one resumes from its checkpoint.
# KEEP=reports/lm/study copies each run's small files (experiments/report/lm_default.py curate).
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/lm-study}
OGJ=${ORDERGRAD_JAX:-ordergrad-jax}  # the installed command (activate the venv, or set ORDERGRAD_JAX)
SEEDS=${SEEDS:-"0 1 2 3 4"}
PY=${PYTHON:-python}
TASK=(--set digits=3 --set num_heldout=1024 --set eval_prompts=1024 --set eval_samples=32
      --set pass_ks=1,2,4,8,16,32 --set steps=300 --set num_chunks=3 --set sft_cache="$OUT/sft"
      --set learn_cpu_fusions=)  # made with XLA:CPU's default learn kernels (results.sh NOFUSE)
methods=(
  "grpo:--set estimator.name=grpo"
  "rloo:--set estimator.name=rloo"
  "drgrpo:--set estimator.name=dr_grpo"
  "maxpo4:--set estimator.name=maxpo --set k=4"
  "top1at4:--set estimator.name=ordergrad --set k=4 --set objective=TopM:1"
  "top2at4:--set estimator.name=ordergrad --set k=4 --set objective=TopM:2"
  "top3at4:--set estimator.name=ordergrad --set k=4 --set objective=TopM:3"
  "remax8:--set estimator.name=ordergrad --set k=8 --set objective=ReMax"
  "pkpo4:--set estimator.name=pkpo --set k=4"
  "chen4:--set estimator.name=passk_chen --set k=4"
  "bot2at4:--set estimator.name=ordergrad --set k=4 --set objective=BotM:2"
)
if [ -n "${DRY_RUN:-}" ]; then  # list the run ids, run nothing
  for seed in $SEEDS; do for m in "${methods[@]}"; do echo "${m%%:*}-s$seed"; done; done
  exit 0
fi
mkdir -p "$OUT"
date -u +"STUDY START %Y-%m-%dT%H:%M:%SZ"
"$OGJ" run lm-rl --out "$OUT/sft-only" --run-id sft "${TASK[@]}" --set steps=1 --set num_chunks=1 \
  > "$OUT/sft.log" 2>&1 || { echo "SFT FAILED: $OUT/sft.log"; exit 1; }
date -u +"SFT DONE %Y-%m-%dT%H:%M:%SZ"
jobs_list=()
for seed in $SEEDS; do for m in "${methods[@]}"; do jobs_list+=("$seed:$m"); done; done
run_one() {
  local seed=${1%%:*} rest=${1#*:}
  local name=${rest%%:*} args=${rest#*:}
  [ -f "$OUT/lm-rl/$name-s$seed/summary.md" ] && return 0
  # shellcheck disable=SC2086
  "$OGJ" run lm-rl --out "$OUT" --run-id "$name-s$seed" --seed "$seed" "${TASK[@]}" $args \
    > "$OUT/$name-s$seed.log" 2>&1 || echo "FAILED $name-s$seed"
  date -u +"DONE $name-s$seed %Y-%m-%dT%H:%M:%SZ"
}
for ((i = 0; i < ${#jobs_list[@]}; i += 2)); do
  run_one "${jobs_list[i]}" &
  [ $((i + 1)) -lt ${#jobs_list[@]} ] && run_one "${jobs_list[i + 1]}" &
  wait
done
date -u +"STUDY DONE %Y-%m-%dT%H:%M:%SZ"
if [ -n "${KEEP:-}" ]; then
  for d in "$OUT"/lm-rl/*/; do
    "$PY" -m experiments.report.lm_default curate "$d" "$KEEP/$(basename "$d")" --every 25
  done
fi
