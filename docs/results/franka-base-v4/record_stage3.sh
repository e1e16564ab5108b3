#!/usr/bin/env bash
# Stage 3's demonstrations, reach_bowl-heavy (reach_bowl 1800, push_cube 450, pick_cube 60, press_button 45; presets
# none, train, colour in equal shares; execution noise 0.01 rad; seeds from 31000000), recorded in resumable chunks
# into outputs/franka-base-v4-stage3-data/ (see tools/record-chunks.sh). Prints the --data list.
set -euo pipefail
{
  for round in 0 1; do
    for preset in none train colour; do echo "reach_bowl $preset $round 300"; done
    for preset in none train colour; do echo "push_cube $preset $round 75"; done
  done
  for preset in none train colour; do echo "pick_cube $preset 0 20"; done
  for preset in none train colour; do echo "press_button $preset 0 15"; done
} | tools/record-chunks.sh outputs/franka-base-v4-stage3-data 31000000
