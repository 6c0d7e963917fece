"""ferbench: one trustworthy benchmark out of the scattered facial-expression-recognition datasets."""

__version__ = "0.1.0"
