#!/usr/bin/env bash
# The runs behind experiments/control/RESULTS.md (5 seeds each, vmapped in one jit).
# Usage: bash experiments/control/results.sh SECTION [OUT]   (SECTION: classic|sparse|risk|speed)
# Every run writes OUT/control/<run-id>/ (config, metrics.jsonl, final_returns.json, figures,
# summary.md); `python -m experiments.control.aggregate OUT/control/<prefix>*` prints the tables.
set -euo pipefail
SECTION=${1:?classic|sparse|risk|speed}
OUT=${2:-results}
RUN=".venv/bin/ordergrad-jax run control --out $OUT"

run() {  # run ID --set ... ; skips a finished run, resumes an unfinished one
  local id=$1; shift
  if [[ -f "$OUT/control/$id/summary.md" ]]; then echo "done: $id"; return; fi
  echo "run: $id"; $RUN --run-id "$id" "$@" > "$OUT/control/$id.log" 2>&1 || true
  [[ -f "$OUT/control/$id/summary.md" ]] || echo "FAILED: $id (see $OUT/control/$id.log)"
}

mkdir -p "$OUT/control"
case $SECTION in
classic)  # 3. CartPole / Acrobot / Pendulum: order-statistic objectives learn like PPO
  for env in CartPole-v1 Acrobot-v1; do
    common=(--set env=$env --set num_steps=500 --set total_env_steps=1000000 --set num_chunks=10)
    pg=(--set num_groups=4 --set group_size=8)
    run "classic-$env-og_mean" "${common[@]}" "${pg[@]}" --set objective=Mean --set k=4
    run "classic-$env-og_ltm" "${common[@]}" "${pg[@]}" --set objective=LowerTailMean:0.25 --set k=4
    run "classic-$env-og_median" "${common[@]}" "${pg[@]}" --set objective=Median --set k=5
    run "classic-$env-rloo" "${common[@]}" "${pg[@]}" --set estimator=rloo
    run "classic-$env-ppo" "${common[@]}" --set algo=ppo --set lr=2.5e-4 --set anneal_lr=True \
      --set entropy_coef=0.01
  done
  env=Pendulum-v1
  common=(--set env=$env --set num_steps=200 --set total_env_steps=2000000 --set num_chunks=10)
  pg=(--set num_groups=8 --set group_size=8 --set lr=1e-3)
  run "classic-$env-og_mean" "${common[@]}" "${pg[@]}" --set objective=Mean --set k=4
  run "classic-$env-og_ltm" "${common[@]}" "${pg[@]}" --set objective=LowerTailMean:0.25 --set k=4
  run "classic-$env-rloo" "${common[@]}" "${pg[@]}" --set estimator=rloo
  run "classic-$env-ppo" "${common[@]}" --set algo=ppo --set num_envs=16 --set lr=1e-3 \
    --set anneal_lr=True --set entropy_coef=0.0 --set gae_lambda=0.95 --set update_epochs=10
  ;;
sparse)  # 2. MountainCarContinuous: best-of-K / TopM vs the mean
  env=MountainCarContinuous-v0
  common=(--set env=$env --set num_steps=999 --set total_env_steps=2000000 --set num_chunks=10
    --set success_return=50 --set eval_k=8 --set init_log_std=0.0)
  pg=(--set num_groups=2 --set group_size=8)
  run "sparse-og_remax" "${common[@]}" "${pg[@]}" --set objective=ReMax --set k=8 --set group_size=16
  run "sparse-og_top2" "${common[@]}" "${pg[@]}" --set objective=TopM:2 --set k=8 --set group_size=16
  run "sparse-rloo" "${common[@]}" "${pg[@]}" --set estimator=rloo --set group_size=16
  run "sparse-ppo" "${common[@]}" --set algo=ppo --set num_envs=16 --set lr=1e-3 \
    --set entropy_coef=0.0
  ;;
risk)  # 1. risky gridworld and the disturbed continuous task: tail objectives vs the mean
  for env in RiskyGrid-v0 DisturbedCartPole-v0; do
    T=30
    if [[ $env == DisturbedCartPole-v0 ]]; then T=200; fi
    common=(--set env=$env --set num_steps=$T --set total_env_steps=1000000 --set num_chunks=10)
    pg=(--set num_groups=4 --set group_size=16)
    run "risk-$env-og_ltm" "${common[@]}" "${pg[@]}" --set objective=LowerTailMean:0.25 --set k=8
    run "risk-$env-og_botm" "${common[@]}" "${pg[@]}" --set objective=BotM:1 --set k=4
    run "risk-$env-rloo" "${common[@]}" "${pg[@]}" --set estimator=rloo
    run "risk-$env-cvar_pg" "${common[@]}" "${pg[@]}" --set estimator=cvar_pg --set alpha=0.25
    run "risk-$env-ppo" "${common[@]}" --set algo=ppo --set lr=2.5e-4 --set anneal_lr=True \
      --set entropy_coef=0.01
  done
  ;;
speed)  # 4. env steps/s, one process: group-PG OrderGrad vs RLOO vs PPO on CartPole
  .venv/bin/ordergrad-jax bench control --out "$OUT/bench"
  ;;
*) echo "unknown section $SECTION" >&2; exit 2 ;;
esac
