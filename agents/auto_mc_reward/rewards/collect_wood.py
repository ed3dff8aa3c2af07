# Hand-written dense reward for CollectWood (written by the embodied team, not by an LLM).
# Sparse: +1 when wood is collected, -1 on death. Dense: approach the nearest visible
# tree, face it, and a small bonus when a tree first comes into view.


def reward(view, memory):
    wood = view["inventory"]["wood"]
    tree = view["near_blocks"].get("tree")
    sparse = 0.0
    if wood > memory.get("wood", wood):
        sparse = 1.0
    if view["death_cause"] is not None:
        sparse = -1.0
    dense = 0.0
    last = memory.get("tree")
    if tree is not None and last is not None:
        dense += last - tree  # > 0 when the tree got closer
    elif tree is not None:
        dense += 0.5
    if view["target"]["block"] == "tree":
        dense += 1.0
    memory["wood"] = wood
    memory["tree"] = tree
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
