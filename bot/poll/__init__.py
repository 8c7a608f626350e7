"""The poll cycle: the one orchestrator and its pure decisions."""
