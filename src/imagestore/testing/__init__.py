"""Tools that prove imagestore under faults, crashes, load and hostile input.

Used by the project's tests, by third-party drivers' tests and by ``imagestore bench``;
nothing in the library imports this package.

- :mod:`.chaos`: driver-level fault injection (raise, stall, corrupt, cut, SIGKILL)
  at chosen calls, by bytes written or read, or by seeded probability.
- :mod:`.backends`: the one Backend fixture per backend kind: how to open stores on it,
  what they must be able to do, how to reach their bits outside imagestore, teardown.
- :mod:`.conformance`: the conformance suite (pytest classes, one module an operation)
  a driver passes by declaring one ``backend`` fixture; needs pytest only.
- :mod:`.crash`: kill -9 a child process at chosen points of add, clone, delete and
  sweep, then check the invariants (no partial image, no orphan after sweep).
- :mod:`.load`: many clients mixing add/get/clone/delete, with leak counters.
- :mod:`.payloads`: deterministic image bytes that a checker can regenerate.
"""
