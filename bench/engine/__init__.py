"""The engine that runs cells: the plan, the schedule, the runner, the worker and its timing,
placement and signals."""
