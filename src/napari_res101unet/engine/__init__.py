"""The engine process: the network runs here, never in napari's process.

:mod:`.protocol` defines every message once; :mod:`.client` starts and talks to the
process (napari side: no torch, no Qt); :mod:`.server` is the process's main loop and
:mod:`.ops` what it does for each request (segment, train, ping).
"""
