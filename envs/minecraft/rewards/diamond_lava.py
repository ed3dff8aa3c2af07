# Hand-written dense reward for DiamondLava (written by the embodied team, not by an LLM).
# Sparse: +1 when a diamond is mined, -1 on death (lava above all).
# Dense: progress only (see collect_wood.py for why): +/- as a visible diamond gets
# closer/farther, +/- when the agent starts/stops facing it, + for stepping on a cell
# not visited before while no diamond is in view (exploration, finite per episode),
# - when it comes within a step of lava.


def reward(view, memory):
    diamonds = view["inventory"]["diamond"]
    diamond = view["near_blocks"].get("diamond")
    lava = view["near_blocks"].get("lava")
    facing = view["target"]["block"] == "diamond"
    near_lava = lava is not None and lava <= 1.5
    pos = view["location_stats"]["pos"]
    sparse = 0.0
    if diamonds > memory.get("diamonds", diamonds):
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    visited = memory.setdefault("visited", set())
    if "diamond" in memory:
        last = memory["diamond"]
        if diamond is not None and last is not None:
            dense += last - diamond
        dense += float(facing) - float(memory["facing"])
        if diamond is None and pos not in visited:
            dense += 0.2
        if near_lava and not memory["near_lava"]:
            dense -= 1.0
    visited.add(pos)
    memory["diamonds"] = diamonds
    memory["diamond"] = diamond
    memory["facing"] = facing
    memory["near_lava"] = near_lava
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
