#!/usr/bin/env bash
# The runs behind reports/control/RESULTS.md and reports/brax/RESULTS.md (seeds vmapped in one jit:
# 10 per run in section risk, 5 elsewhere).
# Usage: bash experiments/control/results.sh SECTION [OUT]   (SECTION: classic|sparse|risk|brax|brax-rp|brax-variance|brax-bench|speed)
# Every run writes OUT/control/<run-id>/ (config, metrics.jsonl, final_returns.json, figures,
# summary.md); `python -m experiments.control.aggregate OUT/control/<prefix>*` prints the tables.
# DRY_RUN=1 bash experiments/control/results.sh SECTION lists the run ids of a section, runs nothing.
set -euo pipefail
SECTION=${1:?classic|sparse|risk|brax|brax-rp|brax-variance|brax-bench|speed}
OUT=${2:-results}
OGJ=${ORDERGRAD_JAX:-ordergrad-jax}  # the installed command (activate the venv, or set ORDERGRAD_JAX)
RUN="$OGJ run control --out $OUT"

run() {  # run ID --set ... ; skips a finished run, resumes an unfinished one
  local id=$1; shift
  if [[ -n ${DRY_RUN:-} ]]; then echo "$id"; return; fi  # DRY_RUN=1: list the run ids only
  if [[ -f "$OUT/control/$id/summary.md" ]]; then echo "done: $id"; return; fi
  echo "run: $id"; $RUN --run-id "$id" "$@" > "$OUT/control/$id.log" 2>&1 || true
  [[ -f "$OUT/control/$id/summary.md" ]] || echo "FAILED: $id (see $OUT/control/$id.log)"
}

mkdir -p "$OUT/control"
case $SECTION in
classic)  # 3. CartPole / Acrobot / Pendulum: order-statistic objectives learn like PPO (OUT/control/classic-*/)
  for env in CartPole-v1 Acrobot-v1; do
    common=(--set env=$env --set num_steps=500 --set total_env_steps=1000000 --set num_chunks=10)
    pg=(--set num_groups=4 --set group_size=8)
    run "classic-$env-og_mean" "${common[@]}" "${pg[@]}" --set objective=Mean --set k=4
    run "classic-$env-og_ltm" "${common[@]}" "${pg[@]}" --set objective=LowerTailMean:0.25 --set k=4
    run "classic-$env-og_median" "${common[@]}" "${pg[@]}" --set objective=Median --set k=5
    run "classic-$env-rloo" "${common[@]}" "${pg[@]}" --set estimator.name=rloo
    run "classic-$env-ppo" "${common[@]}" --set algo=ppo --set lr=2.5e-4 --set schedule=linear \
      --set entropy_coef=0.01
  done
  env=Pendulum-v1
  common=(--set env=$env --set num_steps=200 --set total_env_steps=2000000 --set num_chunks=10)
  pg=(--set num_groups=8 --set group_size=8 --set lr=1e-3)
  run "classic-$env-og_mean" "${common[@]}" "${pg[@]}" --set objective=Mean --set k=4
  run "classic-$env-og_ltm" "${common[@]}" "${pg[@]}" --set objective=LowerTailMean:0.25 --set k=4
  run "classic-$env-rloo" "${common[@]}" "${pg[@]}" --set estimator.name=rloo
  run "classic-$env-ppo" "${common[@]}" --set algo=ppo --set num_envs=16 --set lr=1e-3 \
    --set schedule=linear --set entropy_coef=0.0 --set gae_lambda=0.95 --set update_epochs=10
  ;;
sparse)  # 2. MountainCarContinuous: best-of-K / TopM vs the mean (writes OUT/control/sparse-*/)
  env=MountainCarContinuous-v0
  common=(--set env=$env --set num_steps=999 --set total_env_steps=2000000 --set num_chunks=10
    --set success_return=50 --set eval_k=8 --set init_log_std=0.0)
  pg=(--set num_groups=2 --set group_size=16)
  run "sparse-og_remax" "${common[@]}" "${pg[@]}" --set objective=ReMax --set k=8
  run "sparse-og_top2" "${common[@]}" "${pg[@]}" --set objective=TopM:2 --set k=8
  run "sparse-rloo" "${common[@]}" "${pg[@]}" --set estimator.name=rloo
  run "sparse-ppo" "${common[@]}" --set algo=ppo --set num_envs=16 --set lr=1e-3 \
    --set entropy_coef=0.0
  ;;
risk)  # 1. DisturbedCartPole and RiskyGrid, 10 seeds per method (tail objectives vs the mean)
  # writes OUT/control/dcp10-*/ and rg10-*/ (reports/control/{disturbed-cartpole,riskygrid}-10seeds/)
  pg=(--set num_groups=4 --set group_size=16)
  ppo=(--set algo=ppo --set lr=2.5e-4 --set schedule=linear --set entropy_coef=0.01)
  ltm=(--set objective=LowerTailMean:0.25 --set k=8)
  common=(--set env=DisturbedCartPole-v0 --set num_steps=200 --set total_env_steps=1000000
    --set num_chunks=10 --set num_seeds=10)
  run dcp10-og_ltm "${common[@]}" "${pg[@]}" "${ltm[@]}"
  run dcp10-og_botm "${common[@]}" "${pg[@]}" --set objective=BotM:1 --set k=4
  run dcp10-rloo "${common[@]}" "${pg[@]}" --set estimator.name=rloo
  run dcp10-cvar_pg "${common[@]}" "${pg[@]}" --set estimator.name=cvar_pg \
    --set estimator.options=alpha=0.25
  run dcp10-ppo "${common[@]}" "${ppo[@]}"
  common=(--set env=RiskyGrid-v0 --set num_steps=30 --set total_env_steps=1000000
    --set num_chunks=10 --set num_seeds=10)
  run rg10-og_ltm "${common[@]}" "${pg[@]}" "${ltm[@]}"
  run rg10-og_botm "${common[@]}" "${pg[@]}" --set objective=BotM:1 --set k=4
  run rg10-rloo "${common[@]}" "${pg[@]}" --set estimator.name=rloo
  run rg10-cvar_pg "${common[@]}" "${pg[@]}" --set estimator.name=cvar_pg \
    --set estimator.options=alpha=0.25
  run rg10-ppo "${common[@]}" "${ppo[@]}"
  # the levers tried on lower-tail OrderGrad (issue 16 section 4)
  warm=(--set warm_start_objective=Mean --set warm_start_frac=0.3)  # the mean for the first 30%
  ent=(--set entropy_schedule=linear --set entropy_coef)  # bonus decaying to 0: ent=COEF
  run rg10-og_ltm_warm30 "${common[@]}" "${pg[@]}" "${ltm[@]}" "${warm[@]}"
  run rg10-og_ltm_warm10 "${common[@]}" "${pg[@]}" "${ltm[@]}" \
    --set warm_start_objective=Mean --set warm_start_frac=0.1
  run rg10-og_ltm_warm05_ent5 "${common[@]}" "${pg[@]}" "${ltm[@]}" "${ent[@]}"=5.0 \
    --set warm_start_objective=Mean --set warm_start_frac=0.05
  for c in 1 5 30; do
    run "rg10-og_ltm_warm30_ent$c" "${common[@]}" "${pg[@]}" "${ltm[@]}" "${warm[@]}" \
      "${ent[@]}"="$c.0"
  done
  for c in 1 10 30; do
    run "rg10-og_ltm_ent$c" "${common[@]}" "${pg[@]}" "${ltm[@]}" "${ent[@]}"="$c.0"
  done
  run rg10-og_ltm_n64_warm30_ent5 "${common[@]}" "${ltm[@]}" "${warm[@]}" "${ent[@]}"=5.0 \
    --set num_groups=1 --set group_size=64
  run rg10-og_ltm_success "${common[@]}" "${pg[@]}" "${ltm[@]}" --set train_reward=success \
    --set success_return=10
  ;;
brax)  # 5. brax (spring backend): the same trainers, order-statistic objectives vs the mean vs PPO
  # TASKS="inverted_pendulum:128:1000000 ..." (task:episode length:env steps) picks a subset.
  BRAX_TASKS=${TASKS:-"inverted_pendulum:128:1000000 reacher:100:3000000 hopper:200:3000000 hopper-push:200:3000000"}
  for spec in $BRAX_TASKS; do
    IFS=: read -r name T steps <<< "$spec"
    task=${name%-push}
    ep="backend=spring,episode_length=$T"
    if [[ $name == *-push ]]; then ep="$ep,push_prob=0.1,push_size=2.0"; fi
    common=(--set env=brax/$task --set env_params=$ep --set num_steps=$T
      --set total_env_steps=$steps --set num_chunks=10 --set eval_k=4)
    pg=(--set num_groups=8 --set group_size=8 --set lr=3e-3 --set update=clip --set k=4)
    run "brax-$name-og_mean" "${common[@]}" "${pg[@]}" --set objective=Mean
    run "brax-$name-og_ltm" "${common[@]}" "${pg[@]}" --set objective=LowerTailMean:0.25
    if [[ $task == hopper ]]; then  # the objective schedule is reported on hopper only
      run "brax-$name-og_ltm_warm" "${common[@]}" "${pg[@]}" --set objective=LowerTailMean:0.25 \
        --set warm_start_frac=0.5 --set warm_start_objective=Mean
    fi
    run "brax-$name-og_remax" "${common[@]}" "${pg[@]}" --set objective=ReMax
    run "brax-$name-ppo" "${common[@]}" --set algo=ppo --set num_envs=16 --set ppo_steps=$T \
      --set lr=3e-4 --set update_epochs=4
  done
  ;;
brax-rp)  # 5. brax: the pathwise trainer (RP) and LR on the same rollouts; 3 seeds vmapped
  # writes OUT/brax-rp/<run-id>/
  rp() {
    local id=$1; shift
    if [[ -n ${DRY_RUN:-} ]]; then echo "$id"; return; fi
    if [[ -f "$OUT/brax-rp/$id/summary.md" ]]; then echo "done: $id"; return; fi
    mkdir -p "$OUT/brax-rp"; echo "run: $id"
    "$OGJ" run brax-rp --out "$OUT" --run-id "$id" --set num_seeds=3 --set num_groups=16 \
      --set group_size=8 --set num_steps=64 --set eval_groups=128 \
      "$@" > "$OUT/brax-rp/$id.log" 2>&1 || echo "FAILED: $id (see $OUT/brax-rp/$id.log)"
  }
  ip=(--set iterations=120 --set num_chunks=6)
  push=(--set env_params=reward=smooth,push_prob=0.2,push_size=2.0)
  rp ip-spring-rp-Mean "${ip[@]}"
  rp ip-spring-rp-LowerTailMean_0_25 "${ip[@]}" --set objective=LowerTailMean:0.25
  rp ip-spring-lr-Mean "${ip[@]}" --set gradient=lr
  rp ip-spring-lr-LowerTailMean_0_25 "${ip[@]}" --set gradient=lr --set objective=LowerTailMean:0.25
  rp ip-spring-push-rp-Mean "${ip[@]}" "${push[@]}"
  rp ip-spring-push-rp-LowerTailMean_0_25 "${ip[@]}" "${push[@]}" --set objective=LowerTailMean:0.25
  for task in reacher hopper; do
    t=(--set env=brax/$task --set env_params=backend=spring --set iterations=60 --set num_chunks=3)
    rp "$task-spring-lr-Mean" "${t[@]}" --set gradient=lr
    rp "$task-spring-rp-Mean" "${t[@]}"
    rp "$task-spring-rp-trunc16-Mean" "${t[@]}" --set truncate=16 --set lr=1e-3
  done
  reacher=(--set env=brax/reacher --set env_params=backend=spring --set iterations=60
    --set num_chunks=3 --set truncate=16 --set learn_std=True)
  rp reacher-spring-rp-trunc16-learnstd-Mean "${reacher[@]}" --set lr=1e-3
  rp reacher-spring-rp-trunc16-std0.1-Mean "${reacher[@]}" --set action_std=0.1
  ;;
brax-variance)  # brax: RP vs LR gradient variance and SNR (writes OUT/brax-variance/variance/)
  "$OGJ" run brax-variance --out "$OUT" --run-id variance
  ;;
brax-bench)  # brax: ours vs brax's PPO and APG, one process each (TASKS="inverted_pendulum ...")
  for task in ${TASKS:-inverted_pendulum reacher hopper}; do
    "$OGJ" bench brax --out "$OUT/bench" --run-id "$task" --set task="$task" --set budget=524288 \
      --set trainers=ours_rp,brax_apg,ours_group_pg,brax_ppo,ours_ppo
  done
  ;;
speed)  # 4. env steps/s, one process: group-PG OrderGrad vs RLOO vs PPO on CartPole
  # writes OUT/bench/control/speed-cartpole/ (reports/control/speed/)
  if [[ -n ${DRY_RUN:-} ]]; then echo speed-cartpole; exit 0; fi
  "$OGJ" bench control --out "$OUT/bench" --run-id speed-cartpole
  ;;
*) echo "unknown section $SECTION" >&2; exit 2 ;;
esac
