"""Widgets more than one screen could use: charts, panels of figures, candidate cards, data statistics."""
