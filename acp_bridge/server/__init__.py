"""Running the bridge: the WebSocket endpoint (:mod:`.websocket`) and the assembled server (:mod:`.app`)."""
