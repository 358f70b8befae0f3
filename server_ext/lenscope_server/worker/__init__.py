"""The model worker: a child process that owns the models (``process``) and its asyncio
client in the server (``client``), speaking length-prefixed msgpack frames (``protocol``)."""
