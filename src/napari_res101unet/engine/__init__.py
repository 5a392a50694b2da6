"""The engine process: the network runs here, never in napari's process.

:mod:`.protocol` defines every message once; :mod:`.client` starts and talks to the
process (napari side: no torch, no Qt) and :mod:`.spawn` starts it (a fixed folder, a safe
``sys.path``, a start timeout); :mod:`.server` is the process's main loop and :mod:`.ops`
what it does for each request (segment, train, ping), with :mod:`.ops_blocks` (segment a
store block by block) and :mod:`.refine_op` (fine-tune on corrections). Replies are read
with :mod:`._plain_pickle` (plain data only). Requests carry
the settings objects of :mod:`napari_res101unet.config` whole.
"""
