# Hand-written dense reward for EatCow (written by the embodied team, not by an LLM).
# Sparse: +1 when a cow is eaten, -1 on death.
# Dense: progress only (see collect_wood.py for why): +/- as the nearest cow gets
# closer/farther or enters/leaves the view, +/- when the agent starts/stops facing a
# cow, +1 for each hit that wounds a cow without killing it (cows need 3 hits), and -
# when a zombie comes within 2 cells.


def reward(view, memory):
    ate = view["achievements"]["eat_cow"]
    cow = view["near_entities"].get("cow")
    facing = view["target"]["entity"] == "cow"
    zombie = view["near_entities"].get("zombie")
    near_zombie = zombie is not None and zombie <= 2
    sparse = 0.0
    if ate and not memory.get("ate", False):
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    if "cow" in memory:
        last = memory["cow"]
        if cow is not None and last is not None:
            dense += last - cow
        elif cow is not None:
            dense += 0.5
        elif last is not None:
            dense -= 0.5
        dense += float(facing) - float(memory["facing"])
        if near_zombie and not memory["near_zombie"]:
            dense -= 1.0
    memory["ate"] = ate
    memory["cow"] = cow
    memory["facing"] = facing
    memory["near_zombie"] = near_zombie
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
