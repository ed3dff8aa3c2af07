"""SLIM: skill discovery with one critic per reward (Emukpere et al., 2024), and its baselines."""
