"""Runs: the typed configuration and presets, the run directory, its checkpoints, its
metrics log and its writer's lock. Everything a run keeps on disk is read and written
here (JSON and safetensors, atomically; never pickle); nothing here trains.
"""
