#!/usr/bin/env bash
# Record scripted-expert demonstrations in chunks that can span sittings. Usage:
#   tools/record-chunks.sh ROOT SEED_FROM < CHUNKS
# Each line of CHUNKS is "task preset round episodes [more record options]" (e.g. "--takeover-from P --takeover-steps
# 40:140" for recovery demos; options are split on spaces); chunk i (from 0, in line order) records episodes seeded from
# SEED_FROM + i * 10000 in one `robosteer record sim` run into its own LeRobot dataset ROOT/<task>-<preset>-<round>,
# written under a temporary name and renamed when complete, so chunks already there are
# skipped and rerunning continues where it stopped. Two chunks run at a time (2 cores). Touch ROOT/STOP to finish the
# running chunks and start no more. The last line printed is the comma-separated list of recorded chunks (for --data).
set -euo pipefail
ROOT=${1:?usage: tools/record-chunks.sh ROOT SEED_FROM < CHUNKS}
SEED_FROM=${2:?usage: tools/record-chunks.sh ROOT SEED_FROM < CHUNKS}
ROBOSTEER=${ROBOSTEER:-.venv/bin/robosteer}
NOISE=${NOISE:-0.01}
mkdir -p "$ROOT"
mapfile -t lines
chunks=()  # "name task preset episodes seed [options]"
for index in "${!lines[@]}"; do
  read -r task preset round episodes options <<< "${lines[$index]}"
  chunks+=("$task-$preset-$round $task $preset $episodes $((SEED_FROM + index * 10000)) $options")
done

record_chunk() {
  local name=$1 task=$2 preset=$3 episodes=$4 seed=$5 options=$6
  rm -rf "$ROOT/.$name.partial"
  # shellcheck disable=SC2086  # the chunk's record options are split on spaces on purpose
  "$ROBOSTEER" record sim --task "$task" --variations "$preset" --episodes "$episodes" --seed "$seed" --noise "$NOISE" \
    --images $options --out "$ROOT/.$name.partial" > "$ROOT/.$name.log" 2>&1
  mv "$ROOT/.$name.partial" "$ROOT/$name"
  echo "recorded $name ($episodes episodes of $task, $preset, seeds from $seed)"
}

running=0
for chunk in "${chunks[@]}"; do
  read -r name task preset episodes seed options <<< "$chunk"
  [ -d "$ROOT/$name" ] && continue
  [ -e "$ROOT/STOP" ] && break
  record_chunk "$name" "$task" "$preset" "$episodes" "$seed" "$options" &
  running=$((running + 1))
  if [ "$running" -ge 2 ]; then wait -n; running=$((running - 1)); fi
done
wait
done_list=$(for chunk in "${chunks[@]}"; do read -r name _ <<< "$chunk"; [ -d "$ROOT/$name" ] && echo "$ROOT/$name"; done | paste -sd, -)
echo "chunks recorded: $(echo "$done_list" | tr ',' '\n' | grep -c . || true) of ${#chunks[@]}"
echo "$done_list"
