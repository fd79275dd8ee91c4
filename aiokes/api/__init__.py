"""The HTTP API: KES's routes as a table (:mod:`~aiokes.api.table`, on the path list of
:mod:`~aiokes.api.paths`), served by one dispatcher (:mod:`~aiokes.api.dispatch`), handlers by
noun (:mod:`~aiokes.api.keys`, :mod:`~aiokes.api.policies`, :mod:`~aiokes.api.identities`,
:mod:`~aiokes.api.system`), on the state a reload swaps (:mod:`~aiokes.api.state`)."""
