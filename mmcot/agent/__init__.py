"""The agent: the LangGraph controller that runs every strategy (state, nodes, graph), and the two shells over it,
the terminal chat (chat*.py) and the HTTP server (server/)."""
