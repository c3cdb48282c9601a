"""Examples of plugging into the suite (README "Your own model")."""
