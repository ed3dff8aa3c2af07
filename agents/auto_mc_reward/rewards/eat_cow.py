# Hand-written dense reward for EatCow (written by the embodied team, not by an LLM).
# Sparse: +1 when a cow is eaten, -1 on death. Dense: approach the nearest visible cow,
# face it (hitting it three times kills it), and keep away from zombies.


def reward(view, memory):
    ate = view["achievements"]["eat_cow"]
    cow = view["near_entities"].get("cow")
    zombie = view["near_entities"].get("zombie")
    sparse = 0.0
    if ate and not memory.get("ate", False):
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    last = memory.get("cow")
    if cow is not None and last is not None:
        dense += last - cow
    elif cow is not None:
        dense += 0.5
    if view["target"]["entity"] == "cow":
        dense += 1.0
    if zombie is not None and zombie <= 2:
        dense -= 0.5
    memory["ate"] = ate
    memory["cow"] = cow
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
