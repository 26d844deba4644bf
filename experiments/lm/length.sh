#!/usr/bin/env bash
# The length comparison of reports/lm/RESULTS.md (issue 14, section 4): 3-digit addition whose
# answers may follow a column-sum scratchpad ("456+789=" -> "1245" or "(15,14,12)1245"), from one
# cached SFT start (half its answers with the scratchpad, label smoothing 0.3 on the result only),
# GRPO vs OrderGrad TopM:2@4 with a length penalty of LP x tokens / 16 that enters the ordering:
# LP = 0.2 on SEEDS seeds, then LP = 0.5 on CONTROL_SEEDS seeds and LP = 0 (the control, one
# seed for lack of machine time) on ZERO_SEEDS; each
# run 300 RL steps of 16 prompts x 16 samples;
# evaluated on 1024 held-out prompts x 8 samples (pass@k, mean completion length, scratchpad share)
# every 50 steps, with the same keys for every method of a seed.
# Two runs at a time; finished runs are skipped, an unfinished one resumes from its checkpoint.
# Then `diagnose forms` splits each run's final held-out completions by form (direct answer or
# scratchpad first) into OUT/forms.jsonl.
# KEEP=reports/lm/length copies each run's small files (experiments/report/lm_default.py curate)
# and forms.jsonl.
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/lm-length}
OGJ=${ORDERGRAD_JAX:-ordergrad-jax}  # the installed command (activate the venv, or set ORDERGRAD_JAX)
SEEDS=${SEEDS:-"0 1 2 3 4"}
CONTROL_SEEDS=${CONTROL_SEEDS:-"0 1 2"}
ZERO_SEEDS=${ZERO_SEEDS:-"0"}
PY=${PYTHON:-python}
TASK=(--set digits=3 --set scratchpad=0.5 --set num_heldout=1024 --set eval_prompts=1024
      --set eval_samples=8 --set pass_ks=1,2,4,8 --set steps=300 --set num_chunks=6
      --set sft_cache="$OUT/sft"
      --set learn_cpu_fusions=)  # made with XLA:CPU's default learn kernels (results.sh NOFUSE)
methods=(
  "grpo:--set estimator.name=grpo"
  "top2at4:--set estimator.name=ordergrad --set k=4 --set objective=TopM:2"
)
jobs_list=()
for lp_seeds in "0.2:$SEEDS" "0.5:$CONTROL_SEEDS" "0:$ZERO_SEEDS"; do
  lp=${lp_seeds%%:*}
  for seed in ${lp_seeds#*:}; do for m in "${methods[@]}"; do
    jobs_list+=("$seed:${m%%:*}-lp$lp:${m#*:} --set length_penalty=$lp")
  done; done
done
if [ -n "${DRY_RUN:-}" ]; then  # list the run ids, run nothing
  for j in "${jobs_list[@]}"; do rest=${j#*:}; echo "${rest%%:*}-s${j%%:*}"; done
  echo forms.jsonl
  exit 0
fi
mkdir -p "$OUT"
date -u +"LENGTH START %Y-%m-%dT%H:%M:%SZ"
"$OGJ" run lm-rl --out "$OUT/sft-only" --run-id sft "${TASK[@]}" --set steps=1 --set num_chunks=1 \
  > "$OUT/sft.log" 2>&1 || { echo "SFT FAILED: $OUT/sft.log"; exit 1; }
date -u +"SFT DONE %Y-%m-%dT%H:%M:%SZ"
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
date -u +"LENGTH DONE %Y-%m-%dT%H:%M:%SZ"
if [ ! -f "$OUT/forms.jsonl" ]; then
  rm -f "$OUT/forms.jsonl.part"
  "$PY" -m experiments.lm.diagnose forms "${TASK[@]}" --runs "$OUT"/lm-rl/*/ \
    --out "$OUT/forms.jsonl.part" > "$OUT/forms.log" 2>&1 && mv "$OUT/forms.jsonl.part" "$OUT/forms.jsonl"
fi
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP" && cp "$OUT/forms.jsonl" "$KEEP/forms.jsonl"
  for d in "$OUT"/lm-rl/*/; do
    "$PY" -m experiments.report.lm_default curate "$d" "$KEEP/$(basename "$d")" --every 25
  done
fi
