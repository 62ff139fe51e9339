"""Tools that prove imagestore under faults, crashes, load and hostile input.

Used by the project's tests and by ``imagestore bench --scenario hardening``;
nothing in the library imports this package.

- :mod:`.chaos`: driver-level fault injection (raise, stall, corrupt, cut, SIGKILL)
  at chosen calls, by bytes written or read, or by seeded probability.
- :mod:`.backends`: one entry per backend kind: how to open stores on it and how
  to list what a crash may leave behind in it.
- :mod:`.crash`: kill -9 a child process at chosen points of add, clone, delete and
  sweep, then check the invariants (no partial image, no orphan after sweep).
- :mod:`.load`: many clients mixing add/get/clone/delete, with leak counters.
- :mod:`.payloads`: deterministic image bytes that a checker can regenerate.
"""
