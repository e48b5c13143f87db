"""The local stack: the `make run` / `make demo` launcher (launcher.py) and the Flower wrapper (flower.py)."""
