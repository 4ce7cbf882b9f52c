"""The conformance suite users run (shipped inside the installed package)."""
