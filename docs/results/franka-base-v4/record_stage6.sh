#!/usr/bin/env bash
# Stage 6's demonstrations: push_cube recovery demos (the committed checkpoint docs/results/franka-base-v4/policy
# drives each attempt for 40-140 steps, the scripted expert takes over and only its part is recorded; 1200 in chunks of
# 200, presets none, train, colour), plus plain demos (push_cube 300, reach_bowl 300, pick_cube 60, press_button 45);
# execution noise 0.01 rad; seeds from 33000000; recorded in resumable chunks into
# outputs/franka-base-v4-stage6-data/ (see tools/record-chunks.sh). Prints the --data list.
set -euo pipefail
TAKEOVER="--takeover-from docs/results/franka-base-v4/policy --takeover-steps 40:140"
{
  for round in 0 1; do
    for preset in none train colour; do echo "push_cube $preset takeover$round 200 $TAKEOVER"; done
  done
  for preset in none train colour; do echo "push_cube $preset 0 100"; done
  for preset in none train colour; do echo "reach_bowl $preset 0 100"; done
  for preset in none train colour; do echo "pick_cube $preset 0 20"; done
  for preset in none train colour; do echo "press_button $preset 0 15"; done
} | tools/record-chunks.sh outputs/franka-base-v4-stage6-data 33000000
