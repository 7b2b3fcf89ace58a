"""The pytest face of the engine: one test per (clause, case), the clause id in the test id."""
