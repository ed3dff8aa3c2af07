"""Homeostatic learners (Man, Damasio & Neven 2022) and homeostatically regulated RL."""
