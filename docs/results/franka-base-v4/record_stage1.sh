#!/usr/bin/env bash
# Stage 1's demonstrations of all four pretraining tasks (push_cube 900, reach_bowl 1200, pick_cube 120,
# press_button 90; presets none, train, colour in equal shares; execution noise 0.01 rad; seeds from 30000000),
# recorded in resumable chunks into outputs/franka-base-v4-data/ (see tools/record-chunks.sh). Prints the --data list.
set -euo pipefail
{
  for round in 0 1 2; do
    for preset in none train colour; do echo "push_cube $preset $round 100"; done
    if [ "$round" -lt 2 ]; then for preset in none train colour; do echo "reach_bowl $preset $round 200"; done; fi
  done
  for preset in none train colour; do echo "pick_cube $preset 0 40"; done
  for preset in none train colour; do echo "press_button $preset 0 30"; done
} | tools/record-chunks.sh outputs/franka-base-v4-data 30000000
