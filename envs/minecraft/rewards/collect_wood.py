# Hand-written dense reward for CollectWood (written by the embodied team, not by an LLM).
# Sparse: +1 when wood is collected, -1 on death.
# Dense: progress only, so no state can be farmed: +/- when the nearest tree gets
# closer/farther or comes into/leaves the view, +/- when the agent starts/stops facing
# a tree. (A first version paid for *being* next to a tree every step; under the +0.1
# per step of the scale constraint PPO learned to stand there: 0% success.)


def reward(view, memory):
    wood = view["inventory"]["wood"]
    tree = view["near_blocks"].get("tree")
    facing = view["target"]["block"] == "tree"
    sparse = 0.0
    if wood > memory.get("wood", wood):
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    if "tree" in memory:
        last = memory["tree"]
        if tree is not None and last is not None:
            dense += last - tree
        elif tree is not None:
            dense += 0.5
        elif last is not None:
            dense -= 0.5
        dense += float(facing) - float(memory["facing"])
    memory["wood"] = wood
    memory["tree"] = tree
    memory["facing"] = facing
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
