#!/usr/bin/env bash
# Stage 5's demonstrations, push_cube-heavy (push_cube 1800, reach_bowl 450, pick_cube 60, press_button 45; presets
# none, train, colour in equal shares; execution noise 0.01 rad; seeds from 32000000), recorded in resumable chunks
# into outputs/franka-base-v4-stage5-data/ (see tools/record-chunks.sh). Prints the --data list.
set -euo pipefail
{
  for round in 0 1 2 3; do
    for preset in none train colour; do echo "push_cube $preset $round 150"; done
  done
  for preset in none train colour; do echo "reach_bowl $preset 0 150"; done
  for preset in none train colour; do echo "pick_cube $preset 0 20"; done
  for preset in none train colour; do echo "press_button $preset 0 15"; done
} | tools/record-chunks.sh outputs/franka-base-v4-stage5-data 32000000
