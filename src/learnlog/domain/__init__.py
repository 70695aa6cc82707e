"""Pure rules of learnlog. Standard library only: no I/O, no frameworks, no clocks.

Everything here is a function over frozen values; callers pass the time in.
"""
