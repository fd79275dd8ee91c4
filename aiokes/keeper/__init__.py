"""The key keeper: the process of a multi-process server that owns the keystore and the
server's one key cache, so that a group of workers is ONE KES server (docs/workers.md).

* :mod:`~aiokes.keeper.service`: the keeper itself (:class:`~aiokes.keeper.service.Keeper`).
* :mod:`~aiokes.keeper.client`: a worker's side, coherent local copies of keys.
* :mod:`~aiokes.keeper.channel`: the private framed channel between the two.
* :mod:`~aiokes.keeper.slots`: the keeper's view of the worker slots, acknowledgements, fencing.

A package of its own, beside :mod:`aiokes.server` rather than inside it: the request handlers
(:mod:`aiokes.api.system`) use the worker's side, and they sit below the server. Nothing is
imported here, so that importing the worker's side does not load the keeper.
"""
