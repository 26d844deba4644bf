#!/usr/bin/env bash
# The RESULTS.md grid: 6 methods x 3 seeds from one cached SFT warm start.
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/lm-grid}
mkdir -p "$OUT"
for seed in 0 1 2; do
  for m in "grpo:--set estimator=grpo" "rloo:--set estimator=rloo" "maxpo4:--set estimator=maxpo --set k=4" \
           "top2at4:--set estimator=ordergrad --set k=4 --set objective=TopM:2" \
           "pass8:--set estimator=ordergrad --set k=8 --set objective=ReMax" \
           "bot2at4:--set estimator=ordergrad --set k=4 --set objective=BotM:2"; do
    name=${m%%:*}; args=${m#*:}
    [ -f "$OUT/lm-rl/$name-s$seed/summary.md" ] && continue
    .venv/bin/ordergrad-jax run lm-rl --out "$OUT" --run-id "$name-s$seed" --seed $seed \
      --set sft_cache=results/lm-grid/sft $args > "$OUT/$name-s$seed.log" 2>&1
  done
done
echo GRID DONE
