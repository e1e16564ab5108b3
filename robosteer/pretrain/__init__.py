"""Pretraining the embedded base (an application: it records in the simulator and trains a policy)."""
