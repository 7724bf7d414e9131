"""The agent's own API (design §3.6): streamed container logs and WebSocket port-forward, authorized by WhoIs."""
