"""Pure logic: API models, revisions, the rollout planner, analysis. No I/O."""
