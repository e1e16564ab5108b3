#!/usr/bin/env bash
# Stage 7's replay demonstrations: plain demos of every task (push_cube 300, reach_bowl 300, pick_cube 60,
# press_button 45; presets none, train, colour in equal shares), standing in for stages 5 and 6's recordings, which
# were lost with the machine that recorded them. Execution noise 0.01 rad; seeds from 35000000; recorded in resumable
# chunks into outputs/franka-base-v4-stage7-replay/ (see tools/record-chunks.sh). Prints the --data list.
set -euo pipefail
{
  for preset in none train colour; do echo "push_cube $preset 0 100"; done
  for preset in none train colour; do echo "reach_bowl $preset 0 100"; done
  for preset in none train colour; do echo "pick_cube $preset 0 20"; done
  for preset in none train colour; do echo "press_button $preset 0 15"; done
} | tools/record-chunks.sh outputs/franka-base-v4-stage7-replay 35000000
