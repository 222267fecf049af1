"""reverso: Reverse Preference Optimization for complex multi-constraint instruction following."""

__version__ = "0.1.0"
