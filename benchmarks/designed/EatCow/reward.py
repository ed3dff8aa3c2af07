def reward(view, memory):
    sparse = 0.0  # task progress or failure
    dense = 0.0  # shaping towards success
    
    # Check if the episode ended due to death
    if view["death_cause"] is not None:
        sparse = -1.0
        return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
    
    # Check if the episode ended successfully (eating cow)
    if memory.get("eat_cow", False):
        sparse = 1.0
        return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
    
    # Calculate the distance to a cow and its health
    if view["target"]["entity"] == "cow":
        facing_cow = view["location_stats"]["facing"]
        distance_to_cow = view["near_entities"].get("cow", 0.0)
        if distance_to_cow <= 4:
            sparse += 1.0 - distance_to_cow / 4
        if memory.get("eat_cow", False):
            sparse += 1.0
    
    # Calculate the distance to a zombie and its health
    if view["target"]["entity"] == "zombie":
        facing_zombie = view["location_stats"]["facing"]
        distance_to_zombie = view["near_entities"].get("zombie", 0.0)
        if distance_to_zombie <= 4:
            sparse += 1.0 - distance_to_zombie / 4
        if memory.get("eat_cow", False):
            sparse += 1.0
    
    # Calculate the distance to a skeleton and its health
    if view["target"]["entity"] == "skeleton":
        facing_skeleton = view["location_stats"]["facing"]
        distance_to_skeleton = view["near_entities"].get("skeleton", 0.0)
        if distance_to_skeleton <= 4:
            sparse += 1.0 - distance_to_skeleton / 4
        if memory.get("eat_cow", False):
            sparse += 1.0
    
    # Calculate the health and energy of the agent
    health = view["life_stats"]["health"]
    food = view["life_stats"]["food"]
    drink = view["life_stats"]["drink"]
    energy = view["life_stats"]["energy"]
    
    # Calculate the reward based on the agent's state
    if health <= 0:
        sparse = -1.0
    elif food <= 0 or drink <= 0:
        sparse -= 1.0
    else:
        sparse += 1.0
    
    dense += (1.0 / 4) * health
    dense += (1.0 / 4) * food
    dense += (1.0 / 4) * drink
    dense += (1.0 / 4) * energy
    
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}
