#!/usr/bin/env bash
# The reports/lm/RESULTS.md grid: 6 methods x 3 seeds from one cached SFT warm start (the three seeds run
# in parallel; finished runs are skipped, an unfinished one resumes from its checkpoint).
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/lm-grid}
OGJ=${ORDERGRAD_JAX:-ordergrad-jax}  # the installed command (activate the venv, or set ORDERGRAD_JAX)
mkdir -p "$OUT"
# The grid's settings: the old SFT start (1000 steps, no label smoothing), 50 RL steps at Adam 1e-4
# in 2 chunks (the lm-rl defaults changed since: reports/lm/RESULTS.md, "The default setting").
OLD=(--set sft_steps=1000 --set sft_smoothing=0 --set lr=1e-4 --set steps=50 --set num_chunks=2
      --set learn_cpu_fusions=)  # made with XLA:CPU's default learn kernels (results.sh NOFUSE)
methods=(
  "grpo:--set estimator.name=grpo"
  "rloo:--set estimator.name=rloo"
  "maxpo4:--set estimator.name=maxpo --set k=4"
  "top2at4:--set estimator.name=ordergrad --set k=4 --set objective=TopM:2"
  "pass8:--set estimator.name=ordergrad --set k=8 --set objective=ReMax"
  "bot2at4:--set estimator.name=ordergrad --set k=4 --set objective=BotM:2"
)
if [ -n "${DRY_RUN:-}" ]; then  # list the run ids, run nothing
  for seed in 0 1 2; do for m in "${methods[@]}"; do echo "${m%%:*}-s$seed"; done; done
  echo sft
  exit 0
fi
# The shared SFT warm start first (the runs below then load it from the cache).
# (num_chunks=1: a run's chunks must not outnumber its steps.) Stop if it fails: the three seeds'
# runs would otherwise each train the SFT start into the same cache at once.
date -u +"GRID START %Y-%m-%dT%H:%M:%SZ"
"$OGJ" run lm-rl --out "$OUT/sft-only" --run-id sft "${OLD[@]}" --set steps=1 --set num_chunks=1 \
  --set sft_cache="$OUT/sft" > "$OUT/sft.log" 2>&1 || { echo "SFT FAILED: $OUT/sft.log"; exit 1; }
date -u +"SFT DONE %Y-%m-%dT%H:%M:%SZ"
for seed in 0 1 2; do
  (
    for m in "${methods[@]}"; do
      name=${m%%:*}; args=${m#*:}
      [ -f "$OUT/lm-rl/$name-s$seed/summary.md" ] && continue
      # shellcheck disable=SC2086
      "$OGJ" run lm-rl --out "$OUT" --run-id "$name-s$seed" --seed $seed "${OLD[@]}" \
        --set sft_cache="$OUT/sft" $args > "$OUT/$name-s$seed.log" 2>&1
    done
  ) &
done
wait
date -u +"GRID DONE %Y-%m-%dT%H:%M:%SZ"
# With KEEP set (e.g. KEEP=reports/lm/grid): each run's small files, what `ordergrad-jax report lm`
# reads (no checkpoints, no figures), and the SFT run's as $KEEP/sft.
if [ -n "${KEEP:-}" ]; then
  for d in "$OUT"/lm-rl/*/ "$OUT"/sft-only/lm-rl/sft/; do
    mkdir -p "$KEEP/$(basename "$d")"
    cp "$d"config.json "$d"metrics.jsonl "$d"summary.md "$KEEP/$(basename "$d")/"
  done
fi
