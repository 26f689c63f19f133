"""Agent backends: what runs or reaches an agent behind the bridge (``base`` is the contract)."""
