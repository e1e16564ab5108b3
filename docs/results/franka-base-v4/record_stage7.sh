#!/usr/bin/env bash
# Stage 7's demonstrations, for the tasks given as arguments (the ones stage 6 left below 90 %), e.g.
#   bash docs/results/franka-base-v4/record_stage7.sh push_cube reach_bowl
# Per task given: 1800 recovery demos (the committed checkpoint docs/results/franka-base-v4/policy drives each attempt
# for a task-dependent number of steps, the scripted expert takes over and only its part is recorded; chunks of 100,
# presets none, train, colour, six rounds). For every task: plain demos (push_cube 150, reach_bowl 150, pick_cube 30,
# press_button 30). Execution noise 0.01 rad; seeds from 34000000; recorded in resumable chunks into
# outputs/franka-base-v4-stage7-data/ (see tools/record-chunks.sh). Prints the --data list.
set -euo pipefail
[ "$#" -ge 1 ] || { echo "usage: $0 TASK [TASK ...] (the tasks stage 6 left below 90 %)" >&2; exit 2; }
takeover_steps() {  # each task's driver runs up to about its successful episodes' length
  case $1 in
    push_cube) echo 40:140 ;;
    reach_bowl) echo 5:25 ;;
    pick_cube) echo 10:40 ;;
    press_button) echo 5:25 ;;
    *) echo "unknown task $1; give pick_cube, push_cube, press_button or reach_bowl" >&2; exit 2 ;;
  esac
}
for task in "$@"; do takeover_steps "$task" > /dev/null; done
{
  for task in "$@"; do
    options="--takeover-from docs/results/franka-base-v4/policy --takeover-steps $(takeover_steps "$task")"
    for round in 0 1 2 3 4 5; do
      for preset in none train colour; do echo "$task $preset takeover$round 100 $options"; done
    done
  done
  for preset in none train colour; do echo "push_cube $preset 0 50"; done
  for preset in none train colour; do echo "reach_bowl $preset 0 50"; done
  for preset in none train colour; do echo "pick_cube $preset 0 10"; done
  for preset in none train colour; do echo "press_button $preset 0 10"; done
} | tools/record-chunks.sh outputs/franka-base-v4-stage7-data 34000000
