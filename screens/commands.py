"""The command palette lists every key binding of the current screen, and the commands a screen
adds with a `palette_commands()` method ((name, help, callback) each: the monitor's charts).

The app's own bindings (quit) are already in Textual's system commands.
"""

from __future__ import annotations

from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScreenCommands(Provider):
    """One command per described binding, so every action can be found by name."""

    def _commands(self) -> list[tuple[str, str, object]]:
        screen = self.screen
        seen: set[str] = set()
        found = []
        for binding in type(screen).BINDINGS:
            if not isinstance(binding, Binding) or not binding.description or binding.system:
                continue
            if binding.action in seen or screen.check_action(binding.action, ()) is False:
                continue
            seen.add(binding.action)
            key = binding.key_display or binding.key
            found.append((binding.description, f"key: {key}", partial(screen.run_action, binding.action)))
        extra = getattr(screen, "palette_commands", None)  # a screen's commands that no key names alone
        if callable(extra):
            found.extend(extra())
        return found

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
