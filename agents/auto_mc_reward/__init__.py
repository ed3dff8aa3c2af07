"""Auto MC-Reward (Li et al., CVPR 2024): LLM-designed dense rewards for the Minecraft tasks."""
