"""The machine under a run: the services it starts, the XFS mount, the noise guard, child RSS, the
legacy scenarios' Context, and where the source checkout's scripts are."""
