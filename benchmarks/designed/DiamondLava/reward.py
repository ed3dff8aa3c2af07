def reward(view, memory):
    sparse = 0.0  # task progress or failure
    dense = 0.0  # shaping towards success
    if view["target"]["block"] == "diamond":
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    if "near_blocks" in memory and "lava" in memory["near_blocks"]:
        lava_dist = memory["near_blocks"]["lava"]
        if lava_dist < 2.0:
            dense += 1.0
        else:
            dense -= 1.0
    if "target" in memory and memory["target"]["block"] is not None:
        target_block = memory["target"]["block"]
        if target_block == "lava":
            dense -= 1.0
    dense += float(view["inventory"]["diamond"]) - float(memory.get("diamond", 0))
    sparse += float(view["life_stats"]["health"]) - float(memory.get("health", 9))
    memory["diamond"] = view["inventory"]["diamond"]
    memory["health"] = view["life_stats"]["health"]
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
