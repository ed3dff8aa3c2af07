def reward(view, memory):
    ate = view["achievements"]["collect_wood"]
    tree = view["near_blocks"].get("tree")
    facing = view["target"]["block"] == "tree"
    zombie = view["near_entities"].get("zombie")
    near_zombie = zombie is not None and zombie <= 2
    sparse = 0.0
    if ate and not memory.get("ate", False):
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    if "tree" in memory:
        last = memory.get("tree")
        if tree is not None and last is not None:
            dense += last - tree
        elif tree is not None:
            dense += 0.5
        elif last is not None:
            dense -= 0.5
        dense += float(facing) - float(memory["facing"])
        if near_zombie and not memory.get("near_zombie"):
            dense -= 1.0
    memory["ate"] = ate
    memory["tree"] = tree
    memory["facing"] = facing
    memory["near_zombie"] = near_zombie
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
