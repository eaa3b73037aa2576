"""What a workload costs in memory: pure functions of a ModelSpec and a workload."""
