"""A radio button and a check box whose state reads without colour: ● chosen, ○ not; ✔ ticked, blank not.

Textual's own show the same glyph either way and tell the state by its colour alone, which a 16-colour or
NO_COLOR terminal, a capture or a screen reader loses.
"""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class MarkedRadioButton(RadioButton):
    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 - ToggleButton reads this class attribute's name
        return "●" if self.value else "○"


class MarkedCheckbox(Checkbox):
    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802
        return "✔" if self.value else " "
