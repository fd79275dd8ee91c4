"""Go-compatible helpers, one of each: what KES (written in Go) reads and writes as text.

``json`` (``encoding/json``'s decoding rules), ``base64`` (``base64.StdEncoding``), ``time``
(``time.Time`` as RFC 3339) and ``duration`` (``time.ParseDuration`` / ``Duration.String``).
Nothing here imports the rest of aiokes.
"""
