# Hand-written dense reward for DiamondLava (written by the embodied team, not by an LLM).
# Sparse: +1 when a diamond is mined, -1 on death (lava above all). Dense: approach a
# visible diamond and face it; otherwise explore cells not visited before; stay a step
# away from lava.


def reward(view, memory):
    diamonds = view["inventory"]["diamond"]
    diamond = view["near_blocks"].get("diamond")
    lava = view["near_blocks"].get("lava")
    pos = view["location_stats"]["pos"]
    sparse = 0.0
    if diamonds > memory.get("diamonds", diamonds):
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    last = memory.get("diamond")
    if diamond is not None and last is not None:
        dense += last - diamond
    if view["target"]["block"] == "diamond":
        dense += 1.0
    visited = memory.setdefault("visited", set())
    if diamond is None and pos not in visited:
        dense += 0.2
    visited.add(pos)
    if lava is not None and lava <= 1.5:
        dense -= 1.0
    memory["diamonds"] = diamonds
    memory["diamond"] = diamond
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
