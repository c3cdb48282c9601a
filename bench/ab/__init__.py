"""A/B in lockstep: the driver and the sides.

The side servers stay at bench.lockstep: that path is the contract with older revisions.
"""
