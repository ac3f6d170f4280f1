"""``mmcot serve``: an OpenAI-compatible HTTP API over the controller, its strategies and tools.

- ``app``: configuration (``ServeConfig``), routes and ``serve(cfg)``;
- ``protocol``: the request/response models (pydantic, the HTTP boundary only);
- ``media``: untrusted images and messages in; ``runner``: one agent run over a conversation;
- ``stream``: events to OpenAI stream deltas; ``engine``: queue, timeouts, cancellation; ``errors``: error bodies.
"""
