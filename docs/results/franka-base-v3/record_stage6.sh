#!/usr/bin/env bash
# Stage 6's fresh demonstrations of the two short tasks, recorded in chunks so the recording can run over several
# sittings: each chunk is one `robosteer record sim` run into its own LeRobot dataset under outputs/franka-base-v3f-data/,
# written under a temporary name and renamed when complete; chunks already there are skipped, so rerunning this
# script continues where it stopped. Two chunks run at a time (2 cores). Touch outputs/franka-base-v3f-data/STOP to
# finish the running chunks and start no more. Prints the --data list for `robosteer pretrain` at the end.
set -euo pipefail
ROBOSTEER=${ROBOSTEER:-.venv/bin/robosteer}
ROOT=outputs/franka-base-v3f-data
mkdir -p "$ROOT"
chunks=()  # name task preset episodes seed; push_cube 900 and reach_bowl 1200 demos over the presets none, train, colour
index=0
for round in 0 1 2; do
  for preset in none train colour; do
    chunks+=("push_cube-$preset-$round push_cube $preset 100 $((20000000 + index * 10000))"); index=$((index + 1))
  done
  for preset in none train colour; do
    if [ "$round" -lt 2 ]; then
      chunks+=("reach_bowl-$preset-$round reach_bowl $preset 200 $((20000000 + index * 10000))"); index=$((index + 1))
    fi
  done
done

record_chunk() {
  local name=$1 task=$2 preset=$3 episodes=$4 seed=$5
  rm -rf "$ROOT/.$name.partial"
  "$ROBOSTEER" record sim --task "$task" --variations "$preset" --episodes "$episodes" --seed "$seed" --noise 0.01 \
    --images --out "$ROOT/.$name.partial" > "$ROOT/.$name.log" 2>&1
  mv "$ROOT/.$name.partial" "$ROOT/$name"
  echo "recorded $name ($episodes episodes of $task, $preset, seeds from $seed)"
}

running=0
for chunk in "${chunks[@]}"; do
  read -r name task preset episodes seed <<< "$chunk"
  [ -d "$ROOT/$name" ] && continue
  [ -e "$ROOT/STOP" ] && break
  record_chunk "$name" "$task" "$preset" "$episodes" "$seed" &
  running=$((running + 1))
  if [ "$running" -ge 2 ]; then wait -n; running=$((running - 1)); fi
done
wait
done_list=$(for chunk in "${chunks[@]}"; do read -r name _ <<< "$chunk"; [ -d "$ROOT/$name" ] && echo "$ROOT/$name"; done | paste -sd, -)
echo "chunks recorded: $(echo "$done_list" | tr ',' '\n' | grep -c . || true) of ${#chunks[@]}"
echo "--data outputs/franka-base-v3b/dataset,outputs/franka-base-v3c/dataset,$done_list"
