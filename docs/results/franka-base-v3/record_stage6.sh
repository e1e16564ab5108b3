#!/usr/bin/env bash
# Stage 6's fresh demonstrations of the two short tasks (push_cube 900, reach_bowl 1200; presets none, train, colour;
# execution noise 0.01 rad; seeds from 20000000), recorded in resumable chunks into outputs/franka-base-v3f-data/
# (see tools/record-chunks.sh). Prints the --data list for `robosteer pretrain` at the end.
set -euo pipefail
chunks=$(
  for round in 0 1 2; do
    for preset in none train colour; do echo "push_cube $preset $round 100"; done
    if [ "$round" -lt 2 ]; then for preset in none train colour; do echo "reach_bowl $preset $round 200"; done; fi
  done
)
done_list=$(tools/record-chunks.sh outputs/franka-base-v3f-data 20000000 <<< "$chunks" | tee /dev/stderr | tail -1)
echo "--data outputs/franka-base-v3b/dataset,outputs/franka-base-v3c/dataset,$done_list"
