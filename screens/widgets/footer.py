"""The footer of every screen: its keys in the order the screen lists them (most used first), as many as
fit in one line, and always the key that shows them all (`?`, the keys panel) and the palette's (^p)."""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel, KeyGroup

KEYS_ACTION = "toggle_keys"  # the action of the binding that opens the keys panel (screens/app.py)


def kept(widths: list[int], room: int, always: int | None) -> list[bool]:
    """Which items to show: the first ones that fit in `room` columns, and the item `always` wherever it is.
    No later item takes the place of one dropped: the order stays the screen's."""
    left = room - (widths[always] if always is not None else 0)
    shown, full = [], False
    for i, width in enumerate(widths):
        if i == always:
            shown.append(True)
            continue
        full = full or width > left
        shown.append(not full)
        if not full:
            left -= width
    return shown


class KeyFooter(Footer):
    """A Footer that drops the keys it has no room for rather than cutting them off at the right."""

    _widths: list[int] | None = None  # each item's width, measured once laid out with every item shown
    _measured: tuple = ()  # the items those widths are of
    _palette = 0  # the width of the palette's key, docked at the right

    def compose(self):
        yield from super().compose()
        self.call_after_refresh(self._measure)

    async def recompose(self) -> None:
        """Rebuilt (the screen's bindings changed): the same keys as before are fitted before they show."""
        await super().recompose()
        if self._widths is not None and self._signature() == self._measured:
            self._fit()

    def _signature(self) -> tuple:
        return tuple((type(widget).__name__, getattr(widget, "key_display", ""), getattr(widget, "description", ""))
                     for item in self._items() for widget in item)

    def _items(self) -> list[list[Widget]]:
        """The footer's items, a group of keys together with the label after it."""
        items: list[list[Widget]] = []
        for child in self.children:
            if child.has_class("-command-palette"):
                continue
            if isinstance(child, FooterLabel) and items and isinstance(items[-1][-1], KeyGroup):
                items[-1].append(child)
            else:
                items.append([child])
        return items

    def _measure(self, tries: int = 100) -> None:
        """Each item's width as laid out with all of them shown; then the ones that fit. Items not laid out
        yet (a width of 0: a busy machine can run this before the layout of new keys) are measured again
        a moment later."""
        items = self._items()
        if not self.is_attached or any(not widget.display for item in items for widget in item):
            return
        widths = [sum(widget.outer_size.width + widget.styles.margin.width for widget in item) for item in items]
        if (0 in widths or not self.size.width) and tries > 0:
            self.set_timer(0.02, lambda: self._measure(tries - 1))
            return
        self._widths = widths
        self._measured = self._signature()
        self._palette = sum(child.outer_size.width for child in self.children if child.has_class("-command-palette"))
        self._fit()

    def on_resize(self) -> None:
        if self._widths is not None:
            self._fit()

    def _fit(self) -> None:
        items = self._items()
        if self._widths is None or len(items) != len(self._widths):
            return  # recomposed since: the new items are measured after their layout
        room = self.size.width - self._palette
        always = next((i for i, item in enumerate(items)
                       if isinstance(item[0], FooterKey) and item[0].action == KEYS_ACTION), None)
        for item, show in zip(items, kept(self._widths, room, always)):
            for widget in item:
                widget.display = show
