"""``nvc``: the command-line front end over nvcodec's public API."""
